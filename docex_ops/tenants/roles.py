"""PostgreSQL tenant roles: a login-less role per tenant that owns only that tenant's schema."""

from __future__ import annotations

from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError

from docex_ops.backends.postgres import PostgresBackend, quote_ident
from docex_ops.tenancy import role_name_for

# The relation kinds a role can own, and the ALTER/GRANT keyword of each (``c`` is pg_class).
RELKINDS = ("r", "p", "v", "m", "S", "f")
RELATION_KIND_SQL = ("CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' "
                     "WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' "
                     "ELSE 'TABLE' END")

_RELATIONS_SQL = f"""
SELECT c.relname, {RELATION_KIND_SQL}
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(s)s AND c.relkind IN {RELKINDS}
"""


def ensure_role(conn: Connection, role: str) -> bool:
    """Create the login-less ``role`` if missing and make the connecting user a member (so it
    keeps reaching what the role owns), inside the caller's transaction; True if created."""
    created = conn.exec_driver_sql(
        "SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": role}).first() is None
    if created:
        conn.exec_driver_sql(f"CREATE ROLE {quote_ident(role)} NOLOGIN")
    conn.exec_driver_sql(f"GRANT {quote_ident(role)} TO CURRENT_USER")
    return created


def ensure_tenant_role(backend: PostgresBackend, tenant_id: str) -> tuple[str, bool]:
    """Create ``docex_t_<id>`` (NOLOGIN) if missing and make it own the tenant schema and its
    relations, in one transaction. Returns (role, created).

    The connecting user is made a member so it keeps reaching the tenant as before.
    Roles are cluster-wide: two databases with the same tenant id share the role.
    """
    schema, role = backend.location(tenant_id), role_name_for(tenant_id)
    try:
        with backend.admin_engine.begin() as conn:
            backend.lock_tenant(conn, schema)
            created = ensure_role(conn, role)
            conn.exec_driver_sql(f"ALTER SCHEMA {quote_ident(schema)} OWNER TO {quote_ident(role)}")
            for name, kind in conn.exec_driver_sql(_RELATIONS_SQL, {"s": schema}).all():
                conn.exec_driver_sql(f"ALTER {kind} {quote_ident(schema)}.{quote_ident(name)} "
                                     f"OWNER TO {quote_ident(role)}")
    except ProgrammingError as exc:
        raise RuntimeError(f"tenant {tenant_id!r}: cannot give schema {schema!r} to role "
                           f"{role!r}: {first_line(exc)}; the configured user needs "
                           "CREATEROLE") from exc
    return role, created


def first_line(exc: ProgrammingError) -> str:
    return str(exc.orig).strip().splitlines()[0]


# What still depends on a role, in every database of the cluster (roles are cluster-wide):
# pg_shdepend holds ownership ('o'), privileges ('a'), policies ('r') and initial
# privileges ('i'). This database's relations are named; elsewhere only counted.
_DEPENDENTS_SQL = """
SELECT CASE WHEN s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            THEN '' ELSE coalesce(d.datname, '(shared)') END,
       CASE s.deptype WHEN 'o' THEN 'owns' WHEN 'a' THEN 'has privileges on'
                      WHEN 'r' THEN 'is named by a policy on' ELSE 'is referenced by' END,
       CASE WHEN s.classid = 'pg_class'::regclass AND s.dbid =
                 (SELECT oid FROM pg_database WHERE datname = current_database())
            THEN s.objid::regclass::text ELSE s.classid::regclass::text END
  FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid
 WHERE s.refclassid = 'pg_authid'::regclass
   AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %(r)s)
 ORDER BY 1, 2, 3"""


def release_tenant_role(backend: PostgresBackend, tenant_id: str) -> tuple[str, bool, str] | None:
    """After the tenant's schema is dropped: drop its role ``docex_t_<id>`` when nothing
    else in the cluster depends on it, else leave it and say what holds it. None when
    the tenant had no role. Returns (role, dropped, why)."""
    role = role_name_for(tenant_id)
    with backend.admin_engine.begin() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(r)s",
                                {"r": role}).first() is None:
            return None
        held = conn.exec_driver_sql(_DEPENDENTS_SQL, {"r": role}).all()
        if held:
            what = [f"{verb} {name}" + (f" in database {db}" if db else "")
                    for db, verb, name in held]
            return role, False, (f"it still {', '.join(what[:5])}"
                                 + (f" and {len(what) - 5} more" if len(what) > 5 else "")
                                 + f"; drop or reassign those (REASSIGN OWNED BY {role}), "
                                 f"then DROP ROLE {role}")
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"DROP ROLE {quote_ident(role)}")
        except ProgrammingError as exc:
            return role, False, f"DROP ROLE failed: {first_line(exc)}"
    return role, True, "it owned nothing else"
