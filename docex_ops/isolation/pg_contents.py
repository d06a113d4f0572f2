"""PostgreSQL: each tenant schema holds the DocEX tables and nothing unexpected."""

from __future__ import annotations

from docex_ops.backends import postgres_audit as audit
from docex_ops.isolation.context import AuditContext
from docex_ops.isolation.expected import EXPECTED_TABLES, kind_label, missing_tables
from docex_ops.isolation.results import CheckResult, fail, warn, with_passes

NAME = "contents"


def check_contents(ctx: AuditContext) -> list[CheckResult]:
    objects = audit.schema_objects(ctx.require_catalog(), ctx.subject_locations())
    tables: dict[str, set[str]] = {s: set() for s in ctx.subject_locations()}
    findings: list[CheckResult] = []
    for obj in objects:
        tenant = ctx.tenant_of[obj.schema]
        if obj.kind in ("r", "p") and obj.name in EXPECTED_TABLES:
            tables[obj.schema].add(obj.name)
        elif not ctx.is_allowed(obj.schema, obj.name):
            findings.append(warn(NAME, tenant, f"{obj.schema}.{obj.name}",
                                 f"unexpected {kind_label(obj.kind)} in the tenant schema; "
                                 "remove it, or accept it with --allow "
                                 f"{obj.schema}.{obj.name}"))
    for schema, present in tables.items():
        missing = missing_tables(present)
        if missing:
            findings.append(fail(NAME, ctx.tenant_of[schema], schema,
                                 f"DocEX tables missing: {', '.join(missing)}; "
                                 "migrate or re-provision the tenant"))
    return with_passes(NAME, ctx.subjects, findings, "-",
                       "DocEX tables present, nothing unexpected")
