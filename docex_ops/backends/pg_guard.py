"""PostgreSQL: lock a tenant schema, read what it holds, drop it without reaching outside.

``lock_and_read`` runs inside the transaction that acts: every table of the schema
is locked IN EXCLUSIVE MODE (no writer can add or change a row until the act
commits, while readers, and so the pg_dump of a safety backup, still can), then
the catalog and the row counts are read there. ``drop_schema`` is then a
``DROP SCHEMA ... CASCADE`` that is known to stay inside the schema: nothing
outside depended on it when checked, and ``verify_unchanged`` proves, after the
drop and before the commit, that nothing slipped in between:

- a table created in the schema between the check and the drop (PostgreSQL locks
  a schema against DROP only while an object is being created in it, so one
  created just before our DROP is cascaded over unseen);
- an object elsewhere that began to depend on the schema meanwhile (a column
  typed by its domain needs no lock on the domain).

It looks from a second connection: the drop is not committed, so that connection
still sees the schema as it was, and the drop's own locks (on the schema and on
everything it removes) keep anything new from arriving until we commit. Anything
unchecked found there raises TenantChangedError, and the caller rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


from docex_ops.backends.contents import (
    VERSION_TABLE,
    Dependent,
    Guard,
    TenantChangedError,
    TenantContents,
)
from docex_ops.backends.pg_sql import quote_ident

LOCK_NOT_AVAILABLE = "55P03"
_DUPLICATE_SCHEMA, _UNIQUE_VIOLATION = "42P06", "23505"

# Tables hold rows; views, foreign tables and sequences do not (matviews do, but
# cannot be locked: their rows only change by REFRESH, which the drop's lock waits for).
# Through pg_depend's index on the referenced namespace: pg_class has none on
# relnamespace, and scanning it cost 17 ms per check among 2,000 tenants.
_RELATIONS_SQL = """
SELECT c.oid::bigint, c.relname::text, c.relkind::text
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = %(nsp)s
   AND d.classid = 'pg_class'::regclass AND d.deptype = 'n'
   AND c.relnamespace = %(nsp)s AND c.relkind IN ('r', 'p', 'm', 'f')
 ORDER BY c.oid
"""

# Objects outside the schema that depend on anything inside it. "Inside": the schema,
# what is in it, and what those own (indexes, constraints, triggers, rules, defaults,
# TOAST tables, row types), unless the owned object lives in another schema (an
# extended statistics object, a partition elsewhere): then it is outside.
_DEPENDENTS_SQL = """
WITH RECURSIVE inside(classid, objid) AS (
    SELECT 'pg_namespace'::regclass::oid, %(nsp)s::oid
  UNION
    SELECT d.classid, d.objid
      FROM inside i JOIN pg_depend d ON d.refclassid = i.classid AND d.refobjid = i.objid
     WHERE (i.classid = 'pg_namespace'::regclass OR d.deptype IN ('a', 'i', 'e', 'P', 'S'))
       AND coalesce((pg_identify_object(d.classid, d.objid, 0)).schema, %(s)s)
           IN (%(s)s, 'pg_toast')
)
SELECT d.classid::regclass::text, d.objid::bigint, d.objsubid, min(d.refobjid)::bigint,
       pg_describe_object(d.classid, d.objid, d.objsubid),
       string_agg(DISTINCT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), ', ')
  FROM inside i JOIN pg_depend d ON d.refclassid = i.classid AND d.refobjid = i.objid
 WHERE d.deptype <> 'p'
   AND NOT EXISTS (SELECT 1 FROM inside j WHERE j.classid = d.classid AND j.objid = d.objid)
 GROUP BY d.classid, d.objid, d.objsubid
 ORDER BY 5
"""

_BLOCKERS_SQL = """
SELECT DISTINCT c.relname::text, l.mode, l.pid, coalesce(a.application_name, '')
  FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %(s)s)
   AND l.granted AND l.pid <> pg_backend_pid()
   AND l.mode IN ('AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock',
                  'ShareLock', 'ShareUpdateExclusiveLock', 'RowExclusiveLock')
 ORDER BY l.mode, 1 LIMIT 3
"""


@dataclass(frozen=True)
class Held:
    """What the acting transaction checked: compared again after the act."""

    schema: str
    namespace: int
    relations: frozenset[int]


def _sql(conn: Connection, statement: str) -> None:
    """Run a statement holding (validated, quoted) names, with no parameters."""
    conn.exec_driver_sql(statement.replace("%", "%%"))


def ms(seconds: float) -> str:
    return f"{max(1, int(seconds * 1000))}ms"


def set_lock_timeout(conn: Connection, seconds: float, to_workers: bool = False) -> None:
    """lock_timeout for the rest of the transaction. ``to_workers``: on a Citus coordinator,
    also for the transactions it opens on the workers (Citus sends a SET LOCAL on, not a
    set_config), so a query routed to a worker waits no longer there."""
    if to_workers:
        conn.exec_driver_sql("SET LOCAL citus.propagate_set_commands TO 'local'")
        conn.exec_driver_sql(f"SET LOCAL lock_timeout TO '{ms(seconds)}'")
        return
    conn.exec_driver_sql("SELECT set_config('lock_timeout', %(t)s, true)", {"t": ms(seconds)})


def namespace_oid(conn: Connection, schema: str) -> int | None:
    oid = conn.exec_driver_sql("SELECT oid::bigint FROM pg_namespace WHERE nspname = %(s)s",
                               {"s": schema}).scalar()
    return None if oid is None else int(oid)


_CITUS_REMOTE_FAILURE = "XX000"
_LOCK_TIMEOUT_TEXT = "canceling statement due to lock timeout"


def is_lock_timeout(exc: BaseException) -> bool:
    """The statement waited out lock_timeout: on this server (55P03) or, through Citus, on
    a worker. Citus reports a worker's lock timeout as XX000 "failure on connection marked
    as essential", the worker's error coming just before it as a WARNING notice."""
    from sqlalchemy.exc import DBAPIError

    error = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(error, "pgcode", None)
    if code == LOCK_NOT_AVAILABLE:
        return True
    if code != _CITUS_REMOTE_FAILURE or "marked as essential" not in str(error):
        return False
    cursor = getattr(error, "cursor", None)
    notices = getattr(getattr(cursor, "connection", None), "notices", None) or []
    return bool(notices) and _LOCK_TIMEOUT_TEXT in notices[-1]


def lock_and_read(conn: Connection, schema: str, dependents: bool = True
                  ) -> tuple[Held, TenantContents] | None:
    """Lock every table of ``schema`` against writers and read what it holds, in the
    caller's transaction (whose lock_timeout bounds every wait). None: no such schema."""
    found = _lock_tables(conn, conn, schema)
    if found is None:
        return None
    nsp, relations = found
    contents = TenantContents(schema, count_rows(conn, schema, relations),
                              read_dependents(conn, schema, nsp) if dependents else ())
    return Held(schema, nsp, frozenset(int(oid) for oid, _, _ in relations)), contents


def lock_beside(conn: Connection, engine: Engine, schema: str, lock_timeout: float
                ) -> TenantContents | None:
    """``lock_and_read`` for a transaction whose snapshot may predate the schema and its
    rows (a split's fill runs on the source's exported snapshot): the locks are taken in
    ``conn``, the catalog read and the rows counted from a fresh connection, which sees
    every committed row; no writer can commit another while ``conn`` holds the locks."""
    with engine.connect() as other:
        set_lock_timeout(other, lock_timeout)
        found = _lock_tables(conn, other, schema)
        contents = None if found is None else \
            TenantContents(schema, count_rows(other, schema, found[1]))
        other.rollback()
    return contents


def _lock_tables(conn: Connection, catalog: Connection, schema: str
                 ) -> tuple[int, Sequence[Any]] | None:
    """Lock every table of ``schema`` in ``conn`` IN EXCLUSIVE MODE, reading the catalog
    from ``catalog`` (``conn`` itself, or a fresh connection); a table created while the
    others were being locked is locked too. (namespace oid, relations), None: no schema."""
    locked: set[int] = set()
    while True:
        nsp = namespace_oid(catalog, schema)
        if nsp is None:
            return None
        relations = catalog.exec_driver_sql(_RELATIONS_SQL, {"nsp": nsp}).all()
        todo = [name for oid, name, kind in relations
                if kind in ("r", "p") and int(oid) not in locked]
        if not todo:
            return nsp, relations
        _sql(conn, "LOCK TABLE " + ", ".join(f"{quote_ident(schema)}.{quote_ident(n)}"
                                             for n in todo) + " IN EXCLUSIVE MODE")
        locked |= {int(oid) for oid, _, kind in relations if kind in ("r", "p")}


def read_contents(conn: Connection, schema: str) -> TenantContents | None:
    """Rows of every table and the dependents outside, without locking anything beyond
    what counting takes (for reports and early refusals; the act checks again)."""
    nsp = namespace_oid(conn, schema)
    if nsp is None:
        return None
    relations = conn.exec_driver_sql(_RELATIONS_SQL, {"nsp": nsp}).all()
    return TenantContents(schema, count_rows(conn, schema, relations),
                          read_dependents(conn, schema, nsp))


def count_rows(conn: Connection, schema: str, relations: Sequence[Any]) -> dict[str, int]:
    """Rows per table (and materialized view) of the schema, alembic_version left out."""
    names = [str(row[1]) for row in relations
             if row[2] in ("r", "m") and row[1] != VERSION_TABLE]
    if not names:
        return {}
    sql = " UNION ALL ".join(f"SELECT {i}, count(*) FROM {quote_ident(schema)}.{quote_ident(n)}"
                             for i, n in enumerate(names))
    counts = {int(i): int(n) for i, n in conn.exec_driver_sql(sql.replace("%", "%%"))}
    return {name: counts[i] for i, name in enumerate(names)}


def read_dependents(conn: Connection, schema: str, nsp: int) -> tuple[Dependent, ...]:
    """Every object outside the schema that depends on it, with the statement that removes
    the dependency. Names come out schema-qualified (search_path pg_catalog for the read,
    then back to what the transaction had: a migration routes through it)."""
    path = conn.exec_driver_sql("SELECT current_setting('search_path')").scalar()
    conn.exec_driver_sql("SELECT set_config('search_path', 'pg_catalog', true)")
    try:
        rows = conn.exec_driver_sql(_DEPENDENTS_SQL, {"nsp": nsp, "s": schema}).all()
        return tuple(Dependent(str(desc), str(on), fix_statement(conn, str(cls), int(oid),
                                                                 int(sub), int(refoid)))
                     for cls, oid, sub, refoid, desc, on in rows)
    finally:
        conn.exec_driver_sql("SELECT set_config('search_path', %(p)s, true)", {"p": path})


def drop_schema(conn: Connection, held: Held) -> None:
    """Drop a schema that ``lock_and_read`` checked (see the module docstring)."""
    _sql(conn, f"DROP SCHEMA {quote_ident(held.schema)} CASCADE")


def swap_in(conn: Connection, engine: Engine, staging: str, target: str, guard: Guard) -> None:
    """In the caller's transaction (tenant advisory lock held): replace ``target``, if it
    exists, by the schema ``staging``: lock and check it, drop it, rename, verify."""
    from sqlalchemy.exc import DBAPIError

    found = lock_and_read(conn, target)
    if found is not None:
        guard(found[1])
        drop_schema(conn, found[0])
    try:
        _sql(conn, f"ALTER SCHEMA {quote_ident(staging)} RENAME TO {quote_ident(target)}")
    except DBAPIError as exc:
        # Created meanwhile by something that does not take our advisory lock (DocEX's
        # own first access): the rename waited for its transaction, then collided.
        if getattr(exc.orig, "pgcode", None) in (_DUPLICATE_SCHEMA, _UNIQUE_VIOLATION):
            raise TenantChangedError(f"{target} was created while the restore ran; rolled "
                                     "back, nothing changed") from exc
        raise
    if found is not None:
        verify_unchanged(engine, found[0])


def verify_unchanged(engine: Engine, held: Held) -> None:
    """After the act, before the commit: nothing unchecked was inside, nothing outside
    depends (from a second connection: see the module docstring)."""
    with engine.connect() as other:
        relations = other.exec_driver_sql(_RELATIONS_SQL, {"nsp": held.namespace}).all()
        new = sorted(str(name) for oid, name, _ in relations if int(oid) not in held.relations)
        dependents = read_dependents(other, held.schema, held.namespace)
        other.rollback()
    if new:
        raise TenantChangedError(f"{held.schema}: table(s) {', '.join(new)} appeared while it "
                                 "was being replaced or dropped; rolled back, nothing changed")
    if dependents:
        raise TenantChangedError(f"{held.schema}: objects outside began to depend on it "
                                 "meanwhile; rolled back, nothing changed: "
                                 + "; ".join(str(d) for d in dependents))


def describe_blockers(source: Engine | Connection, schema: str) -> str:
    """Who holds locks on the schema's tables right now: for a `locked` message. Asked on
    ``source`` itself when it is an open connection (one more may not be had)."""
    if hasattr(source, "exec_driver_sql"):
        rows = source.exec_driver_sql(_BLOCKERS_SQL, {"s": schema}).all()
    else:
        with source.connect() as own:
            rows = own.exec_driver_sql(_BLOCKERS_SQL, {"s": schema}).all()
            own.rollback()
    return ", ".join(f"table {table} held in {mode} by pid {pid}"
                     + (f" ({app})" if app else "") for table, mode, pid, app in rows)


# -- the statement that removes one dependency ------------------------------------------

_FIX_SQL = {
    "pg_rewrite": "SELECT format('DROP %s %s', CASE c.relkind WHEN 'm' THEN "
                  "'MATERIALIZED VIEW' ELSE 'VIEW' END, c.oid::regclass) "
                  "FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = %(o)s",
    "pg_constraint": "SELECT CASE WHEN k.contypid <> 0 THEN format('ALTER DOMAIN %s DROP "
                     "CONSTRAINT %I', k.contypid::regtype, k.conname) ELSE format('ALTER "
                     "TABLE %s DROP CONSTRAINT %I', k.conrelid::regclass, k.conname) END "
                     "FROM pg_constraint k WHERE k.oid = %(o)s",
    "pg_proc": "SELECT format('DROP %s %s', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' "
               "WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, p.oid::regprocedure) "
               "FROM pg_proc p WHERE p.oid = %(o)s",
    "pg_attrdef": "SELECT format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', "
                  "a.adrelid::regclass, t.attname) FROM pg_attrdef a JOIN pg_attribute t "
                  "ON t.attrelid = a.adrelid AND t.attnum = a.adnum WHERE a.oid = %(o)s",
    "pg_trigger": "SELECT format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass) "
                  "FROM pg_trigger t WHERE t.oid = %(o)s",
    "pg_policy": "SELECT format('DROP POLICY %I ON %s', p.polname, p.polrelid::regclass) "
                 "FROM pg_policy p WHERE p.oid = %(o)s",
    "pg_type": "SELECT format('DROP %s %s', CASE t.typtype WHEN 'd' THEN 'DOMAIN' "
               "ELSE 'TYPE' END, t.oid::regtype) FROM pg_type t WHERE t.oid = %(o)s",
    "pg_statistic_ext": "SELECT format('DROP STATISTICS %I.%I', n.nspname, s.stxname) "
                        "FROM pg_statistic_ext s JOIN pg_namespace n "
                        "ON n.oid = s.stxnamespace WHERE s.oid = %(o)s",
}

# A relation (objsubid 0): an index on it, inheritance, a partition, a typed table.
_RELATION_FIX_SQL = """
SELECT CASE
  WHEN c.relkind = 'i' THEN format('DROP INDEX %%s', c.oid::regclass)
  WHEN c.relispartition THEN format('ALTER TABLE %%s DETACH PARTITION %%s',
       (SELECT inhparent::regclass FROM pg_inherits WHERE inhrelid = c.oid), c.oid::regclass)
  WHEN EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid AND inhparent = %(r)s)
       THEN format('ALTER TABLE %%s NO INHERIT %%s', c.oid::regclass, %(r)s::regclass)
  WHEN c.reloftype <> 0 THEN format('ALTER TABLE %%s NOT OF', c.oid::regclass)
  WHEN c.relkind = 'S' THEN format('ALTER SEQUENCE %%s OWNED BY NONE', c.oid::regclass)
  ELSE format('DROP %%s %%s', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN
       'MATERIALIZED VIEW' ELSE 'TABLE' END, c.oid::regclass) END
  FROM pg_class c WHERE c.oid = %(o)s
"""

# A column: typed by the tenant's type or domain (to the domain's base type, else text).
_COLUMN_FIX_SQL = """
SELECT format('ALTER TABLE %%s ALTER COLUMN %%I TYPE %%s', a.attrelid::regclass, a.attname,
              CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
                   ELSE format('text USING %%I::text', a.attname) END)
  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
 WHERE a.attrelid = %(o)s AND a.attnum = %(n)s
"""


def fix_statement(conn: Connection, classid: str, objid: int, objsubid: int,
                  refobjid: int) -> str:
    """The statement that removes the dependency of one outside object on the tenant
    (chosen by the dependent's own kind)."""
    if classid == "pg_class":
        sql, params = ((_COLUMN_FIX_SQL, {"o": objid, "n": objsubid}) if objsubid else
                       (_RELATION_FIX_SQL, {"o": objid, "r": refobjid}))
    elif classid in _FIX_SQL:
        sql, params = _FIX_SQL[classid].replace("%s", "%%s").replace("%I", "%%I"), {"o": objid}
    else:
        return "drop or alter it so that it no longer uses the tenant's objects"
    fix = conn.exec_driver_sql(sql, params).scalar()
    return str(fix) if fix else "drop or alter it so that it no longer uses the tenant's objects"
