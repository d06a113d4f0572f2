"""PostgreSQL scratch objects left behind: ``docex$`` schemas and roles, found, judged
held or not, and removed without ever reaching a tenant.

A schema is held while some session holds the advisory lock on its name
(``scratch.hold_new_schema``); the lock dies with the process, so a schema
nobody holds is a leftover. It is dropped only when nothing outside it depends
on it (a CASCADE would reach into the dependent's schema, possibly a tenant's).
A role gives its objects to the operator before it goes (REASSIGN OWNED), so
dropping it never drops a table.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from docex_ops.backends import scratch
from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backends.postgres import PostgresBackend

_HELD = ("EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
         "AND l.classid = %(ns)s AND l.objid = hashtext({name})::oid AND l.objsubid = 2{db})")

_FIND = f"""
SELECT 'schema', n.nspname::text, {_HELD.format(
    name="n.nspname", db=" AND l.database = (SELECT oid FROM pg_database "
                         "WHERE datname = current_database())")}
  FROM pg_namespace n WHERE n.nspname LIKE %(mark)s
UNION ALL
SELECT 'role', r.rolname::text, {_HELD.format(name="r.rolname", db="")}
  FROM pg_roles r WHERE r.rolname LIKE %(mark)s
 ORDER BY 1, 2"""

# Objects outside the schema that depend on something in it (a column typed by its
# domain, a view on its table, ...): what DROP SCHEMA ... CASCADE would also drop. An
# object's schema is its own, or its table's (defaults, triggers, rules, policies);
# any other kind counts as outside.
_OUTSIDE_DEPENDENTS = """
WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = %(s)s),
mine(classid, objid) AS (
    SELECT 'pg_namespace'::regclass, oid FROM s
    UNION ALL SELECT 'pg_class'::regclass, c.oid FROM pg_class c, s WHERE c.relnamespace = s.oid
    UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t, s WHERE t.typnamespace = s.oid
    UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p, s WHERE p.pronamespace = s.oid)
SELECT DISTINCT o.type || ' ' || o.identity
  FROM pg_depend d JOIN mine m ON d.refclassid = m.classid AND d.refobjid = m.objid
 CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
 CROSS JOIN LATERAL (SELECT CASE d.classid
     WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid)
     WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.objid)
     WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objid)
     WHEN 'pg_constraint'::regclass THEN
          (SELECT connamespace FROM pg_constraint WHERE oid = d.objid)
     WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a
          JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
     WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
     WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite r
          JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = d.objid)
     WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p
          JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = d.objid)
     END AS nsp) owner
 WHERE d.deptype IN ('n', 'a') AND owner.nsp IS DISTINCT FROM (SELECT oid FROM s)
 ORDER BY 1"""


def find(conn: Connection) -> list[tuple[str, str, bool]]:
    """(kind, name, held) of every scratch schema and role the server has."""
    rows = conn.exec_driver_sql(_FIND, {"ns": scratch.SCRATCH_NAMESPACE,
                                        "mark": scratch.PG_MARK + "%"}).all()
    return [(str(kind), str(name), bool(held)) for kind, name, held in rows]


def outside_dependents(conn: Connection, schema: str) -> list[str]:
    return [str(r[0]) for r in conn.exec_driver_sql(_OUTSIDE_DEPENDENTS, {"s": schema})]


def drop_schema(conn: Connection, schema: str) -> None:
    """Drop a scratch schema and what is in it; refuse (RuntimeError) when an object
    outside it depends on it, naming the objects."""
    if not scratch.is_scratch_schema(schema):  # never a tenant's schema
        raise ValueError(f"refusing to drop {schema!r}: not a scratch schema")
    dependents = outside_dependents(conn, schema)
    if dependents:
        raise RuntimeError(f"objects outside {schema} depend on it: {', '.join(dependents)}; "
                           "remove the dependency, then rerun `docex-ops cleanup`")
    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")


def drop_role(conn: Connection, role: str) -> None:
    """Drop a scratch role; whatever it owns in this database becomes the operator's."""
    if not scratch.is_scratch_schema(role):
        raise ValueError(f"refusing to drop role {role!r}: not a scratch role")
    name = quote_ident(role)
    conn.exec_driver_sql(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
    conn.exec_driver_sql(f"DROP OWNED BY {name}")
    conn.exec_driver_sql(f"DROP ROLE {name}")


def remove(backend: PostgresBackend, kind: str, name: str) -> bool:
    """Remove one scratch schema or role unless someone holds it; False when held.

    The hold is taken (on this session) for the drop, so no operation can start using
    the name meanwhile; it is released in the same session afterwards.
    """
    with backend.admin_engine.connect() as conn:
        claimed = scratch.try_claim_schema(conn, name)
        conn.commit()  # a session lock: it outlives this transaction
        if not claimed:
            return False
        try:
            with conn.begin():
                conn.exec_driver_sql("SET LOCAL lock_timeout = %(t)s",
                                     {"t": f"{int(backend.settings.lock_timeout * 1000)}ms"})
                (drop_schema if kind == "schema" else drop_role)(conn, name)
        finally:
            scratch.release_schema(conn, name)
            conn.commit()
    return True
