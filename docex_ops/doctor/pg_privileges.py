"""Privileges docex-ops needs on each server: CREATE on the database (tenant schemas,
scratch schemas) and read access to every tenant object (pg_dump reads them all)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import FAIL, PASS, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext

_CAN_CREATE = "SELECT has_database_privilege(current_database(), 'CREATE'), current_user"
# Tenant schemas pg_dump could not read: no USAGE, or a table or sequence without SELECT.
_UNREADABLE = """
SELECT n.nspname FROM pg_namespace n
 WHERE n.nspname = ANY(%(schemas)s)
   AND (NOT has_schema_privilege(n.oid, 'USAGE')
        OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid
                     AND c.relkind IN ('r', 'p', 'S', 'm')
                     AND NOT has_table_privilege(c.oid, 'SELECT')))
 ORDER BY 1"""


def check_privileges(ctx: DoctorContext) -> list[DoctorRow]:
    if ctx.unreachable:
        return []  # the tenants' schemas are read from every server
    rows = []
    tenants = ctx.status.tenants
    for name, backend in ctx.reachable_postgres.items():
        schemas = [t.location for t in tenants
                   if (ctx.status.servers or {}).get(t.tenant_id, name) == name]
        with backend.admin_engine.connect() as conn:
            can_create, user = conn.exec_driver_sql(_CAN_CREATE).one()
            unreadable = [r[0] for r in conn.exec_driver_sql(
                _UNREADABLE, {"schemas": schemas}).all()]
            conn.rollback()
        where = ctx.where(name)
        rows.append(DoctorRow("privileges", where, PASS if can_create else FAIL,
                              f"{user} can create schemas in {backend.settings.postgres.database}"
                              if can_create else
                              f"{user} lacks CREATE on database "
                              f"{backend.settings.postgres.database}: provisioning, restores "
                              "and splits fail; GRANT CREATE ON DATABASE to it"))
        rows.append(DoctorRow(
            "pg_dump_readable", where, FAIL if unreadable else PASS,
            f"{user} cannot read {len(unreadable)} tenant schema(s) whole, so pg_dump "
            f"would fail: {', '.join(unreadable[:10])}" if unreadable else
            f"{user} can read all {len(schemas)} tenant schema(s)"))
    return rows
