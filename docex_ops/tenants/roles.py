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
