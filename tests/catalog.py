"""Read a tenant's catalog into plain data, the same shape for PostgreSQL and SQLite."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

Catalog = dict[str, Any]

_PG_SQL = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = %(s)s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY c.relname, a.attnum""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype,
               ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n
                     ORDER BY u.i)::text[],
               f.relname, k.confdeltype
          FROM pg_constraint k
          JOIN pg_class c ON c.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_class f ON f.oid = k.confrelid
         WHERE n.nspname = %(s)s""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s""",
}


def pg_catalog(conn: Any, schema: str, skip: tuple[str, ...] = ("alembic_version",)) -> Catalog:
    """Columns, keys and indexes of one schema (psycopg2 connection)."""
    tables: dict[str, Any] = {}
    with conn.cursor() as cur:
        cur.execute(_PG_SQL["columns"], {"s": schema})
        for table, column, type_, notnull, default in cur.fetchall():
            if table in skip:
                continue
            tables.setdefault(table, _empty())["columns"].append(
                (column, type_, bool(notnull), _default(default)))
        cur.execute(_PG_SQL["constraints"], {"s": schema})
        for table, name, contype, cols, ref, deltype in cur.fetchall():
            if table in skip:
                continue
            entry = tables[table]
            if contype == "p":
                entry["pk"] = (name, tuple(cols))
            elif contype == "u":
                entry["unique"].add((name, tuple(cols)))
            elif contype == "f":
                entry["fks"].add((name, tuple(cols), ref,
                                  "CASCADE" if deltype == "c" else "NO ACTION"))
        cur.execute(_PG_SQL["indexes"], {"s": schema})
        constraint_names = {n for t in tables.values() for n, _ in t["unique"]}
        constraint_names |= {t["pk"][0] for t in tables.values() if t["pk"]}
        for table, name, definition in cur.fetchall():
            if table in skip or name in constraint_names:
                continue
            cols = definition[definition.rindex("(") + 1:definition.rindex(")")]
            tables[table]["indexes"].add(
                (name, tuple(c.strip() for c in cols.split(","))))
    return tables


def sqlite_catalog(path: str, skip: tuple[str, ...] = ("alembic_version",)) -> Catalog:
    tables: dict[str, Any] = {}
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        for table in names:
            if table in skip:
                continue
            entry = tables.setdefault(table, _empty())
            pk = []
            for _cid, name, type_, notnull, default, pkpos in conn.execute(
                    f'PRAGMA table_info("{table}")'):
                entry["columns"].append((name, type_, bool(notnull) or bool(pkpos),
                                         _default(default)))
                if pkpos:
                    pk.append((pkpos, name))
            entry["pk"] = (None, tuple(n for _, n in sorted(pk)))
            fks: dict[int, list[Any]] = {}
            for fid, _seq, ref, col, _to, _upd, on_delete, _m in conn.execute(
                    f'PRAGMA foreign_key_list("{table}")'):
                fks.setdefault(fid, [ref, [], on_delete])[1].append(col)
            entry["fks"] = {(None, tuple(cols), ref, ondel) for ref, cols, ondel in fks.values()}
            for _seq, index, _unique, origin, _partial in conn.execute(
                    f'PRAGMA index_list("{table}")'):
                cols = tuple(
                    name + (" DESC" if desc else "")
                    for _n, _c, name, desc, _coll, key in conn.execute(
                        f'PRAGMA index_xinfo("{index}")') if key)
                if origin == "u":
                    entry["unique"].add((None, cols))
                elif origin == "c":
                    entry["indexes"].add((index, cols))
    return tables


def _empty() -> dict[str, Any]:
    return {"columns": [], "pk": None, "unique": set(), "fks": set(), "indexes": set()}


def _default(value: str | None) -> str | None:
    if value is None:
        return None
    return value.split("::", 1)[0]  # 'docex'::character varying -> 'docex'
