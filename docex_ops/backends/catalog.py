"""A tenant's structure read from the catalog as plain data, one shape for both backends.

Used to recognise which revision an unversioned tenant is at (adoption), to
report drift, and by the tests that compare a tenant with DocEX's schema.
Names the database makes up (SQLite's autoindexes, PostgreSQL's defaults in
SQLite) are left out so the two backends compare alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


Catalog = dict[str, dict[str, Any]]
VERSION_TABLE = "alembic_version"

_PG_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum"""

_PG_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype,
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
             ORDER BY u.i)::text[],
       f.relname, k.confdeltype
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class f ON f.oid = k.confrelid
 WHERE n.nspname = %(s)s AND k.contype IN ('p', 'u', 'f')"""

_PG_INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s"


def pg_catalog(conn: Connection, schema: str, skip: tuple[str, ...] = (VERSION_TABLE,)
               ) -> Catalog:
    """Columns, keys and indexes of one PostgreSQL schema."""
    tables: Catalog = {}
    for table, column, type_, notnull, default in conn.exec_driver_sql(_PG_COLUMNS, {"s": schema}):
        if table not in skip:
            tables.setdefault(table, _empty())["columns"].append(
                (column, type_, bool(notnull), _default(default)))
    constraint_names = set()
    for table, name, contype, cols, ref, deltype in conn.exec_driver_sql(
            _PG_CONSTRAINTS, {"s": schema}):
        constraint_names.add(name)
        if table in skip:
            continue
        entry = tables[table]
        if contype == "p":
            entry["pk"] = (name, tuple(cols))
        elif contype == "u":
            entry["unique"].add((name, tuple(cols)))
        else:
            entry["fks"].add((name, tuple(cols), ref, "CASCADE" if deltype == "c" else "NO ACTION"))
    for table, name, definition in conn.exec_driver_sql(_PG_INDEXES, {"s": schema}):
        if table in skip or name in constraint_names:
            continue
        cols = definition[definition.rindex("(") + 1:definition.rindex(")")]
        tables[table]["indexes"].add((name, tuple(c.strip() for c in cols.split(","))))
    return tables


def sqlite_catalog(conn: Connection, skip: tuple[str, ...] = (VERSION_TABLE,)) -> Catalog:
    """Columns, keys and indexes of one SQLite file."""
    tables: Catalog = {}
    names = conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).scalars().all()
    for table in names:
        if table in skip:
            continue
        entry = tables.setdefault(table, _empty())
        pk = []
        for _cid, name, type_, notnull, default, pkpos in conn.exec_driver_sql(
                f"PRAGMA table_info(\"{table}\")"):
            entry["columns"].append((name, type_, bool(notnull) or bool(pkpos), _default(default)))
            if pkpos:
                pk.append((pkpos, name))
        entry["pk"] = (None, tuple(n for _, n in sorted(pk)))
        fks: dict[int, list[Any]] = {}
        for fid, _seq, ref, col, _to, _upd, on_delete, _match in conn.exec_driver_sql(
                f"PRAGMA foreign_key_list(\"{table}\")"):
            fks.setdefault(fid, [ref, [], on_delete])[1].append(col)
        entry["fks"] = {(None, tuple(cols), ref, ondel) for ref, cols, ondel in fks.values()}
        for _seq, index, _unique, origin, _partial in conn.exec_driver_sql(
                f"PRAGMA index_list(\"{table}\")").all():
            cols = tuple(name + (" DESC" if desc else "")
                         for _n, _c, name, desc, _coll, key in conn.exec_driver_sql(
                             f"PRAGMA index_xinfo(\"{index}\")") if key)
            if origin == "u":
                entry["unique"].add((None, cols))
            elif origin == "c":
                entry["indexes"].add((index, cols))
    return tables


def without_names(catalog: Catalog) -> Catalog:
    """The catalog with constraint names blanked: what must match across backends."""
    result: Catalog = {}
    for table, entry in catalog.items():
        result[table] = {
            "columns": entry["columns"],
            "pk": (None, entry["pk"][1]) if entry["pk"] else None,
            "unique": {(None, cols) for _, cols in entry["unique"]},
            "fks": {(None, *rest) for _, *rest in entry["fks"]},
            "indexes": entry["indexes"],
        }
    return result


def diff(actual: Catalog, expected: Catalog) -> list[str]:
    """Human-readable differences, empty when the two catalogs are the same."""
    problems = []
    for table in sorted(set(expected) - set(actual)):
        problems.append(f"table {table} is missing")
    for table in sorted(set(actual) - set(expected)):
        problems.append(f"table {table} is not expected")
    for table in sorted(set(actual) & set(expected)):
        got, want = actual[table], expected[table]
        got_cols = {c[0]: c for c in got["columns"]}
        want_cols = {c[0]: c for c in want["columns"]}
        for name in sorted(set(want_cols) - set(got_cols)):
            problems.append(f"{table}.{name} is missing")
        for name in sorted(set(got_cols) - set(want_cols)):
            problems.append(f"{table}.{name} is not expected")
        for name in sorted(set(got_cols) & set(want_cols)):
            if got_cols[name] != want_cols[name]:
                problems.append(f"{table}.{name} is {got_cols[name][1:]} "
                                f"instead of {want_cols[name][1:]}")
        for key in ("pk", "unique", "fks", "indexes"):
            if got[key] != want[key]:
                problems.append(f"{table} {key} differ: {_short(got[key])} "
                                f"instead of {_short(want[key])}")
    return problems


def _short(value: Any) -> str:
    return str(sorted(value) if isinstance(value, set) else value)


def _empty() -> dict[str, Any]:
    return {"columns": [], "pk": None, "unique": set(), "fks": set(), "indexes": set()}


def _default(value: str | None) -> str | None:
    if value is None:
        return None
    return value.split("::", 1)[0]  # 'docex'::character varying -> 'docex'
