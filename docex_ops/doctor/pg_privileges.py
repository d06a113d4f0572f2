"""Privileges docex-ops needs on each server: CREATE on the database (tenant schemas,
scratch schemas) and read access to every tenant object (pg_dump reads them all)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import FAIL, PASS, DoctorRow
from docex_ops.tenancy import RESERVED_TENANT_IDS, tenant_id_pattern

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


# The tenant schemas by name, from the catalog alone: a user who cannot read them (what
# this check is for) can still list them, where reading their revisions fails.
_NAMED = "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %(head)s) ORDER BY 1"


def check_privileges(ctx: DoctorContext) -> list[DoctorRow]:
    if ctx.unreachable:
        return []  # the tenants' schemas are read from every server
    rows = []
    for name, backend in ctx.reachable_postgres.items():
        template = backend.settings.postgres.schema_template
        pattern = tenant_id_pattern(template)
        with backend.admin_engine.connect() as conn:
            named = conn.exec_driver_sql(
                _NAMED, {"head": template.split("{tenant_id}", 1)[0]}).scalars().all()
            schemas = [s for s in named if (m := pattern.fullmatch(s)) is not None
                       and m["tenant_id"] not in RESERVED_TENANT_IDS]
            can_create, user = conn.exec_driver_sql(_CAN_CREATE).one()
            unreadable = [r[0] for r in conn.exec_driver_sql(
                _UNREADABLE, {"schemas": schemas}).all()]
            conn.rollback()
        where, database = ctx.where(name), backend.settings.postgres.database
        rows.append(DoctorRow("privileges", where, PASS if can_create else FAIL,
                              f"{user} can create schemas in {database}" if can_create else
                              f"{user} lacks CREATE on database {database}: provisioning, "
                              "restores and splits fail; as the database's owner: "
                              f"GRANT CREATE ON DATABASE {database} TO {user};"))
        first = unreadable[0] if unreadable else ""
        rows.append(DoctorRow(
            "pg_dump_readable", where, FAIL if unreadable else PASS,
            f"{user} cannot read {len(unreadable)} tenant schema(s) whole, so pg_dump "
            f"would fail: {', '.join(unreadable[:10])}"
            + (f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else "")
            + f"; run docex-ops as their owner, or per schema: GRANT USAGE ON SCHEMA {first} "
            f"TO {user}; GRANT SELECT ON ALL TABLES IN SCHEMA {first} TO {user}; GRANT "
            f"SELECT ON ALL SEQUENCES IN SCHEMA {first} TO {user};" if unreadable else
            f"{user} can read all {len(schemas)} tenant schema(s)"))
    return rows
