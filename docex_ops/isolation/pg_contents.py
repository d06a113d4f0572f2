"""PostgreSQL: each tenant schema holds the DocEX tables and nothing unexpected."""

from __future__ import annotations

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.isolation import pg_facts
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.expected import EXPECTED_TABLES, kind_label, missing_tables
from docex_ops.isolation.pg_facts_code import ObjectAddress
from docex_ops.isolation.pg_remedy import drop
from docex_ops.isolation.results import CheckResult, fail, warn, with_passes
from docex_ops.schema.ddl import table_statements

NAME = "contents"


def check_contents(ctx: IsolationContext) -> list[CheckResult]:
    objects = pg_facts.schema_objects(ctx.require_catalog(), ctx.subject_locations())
    tables: dict[str, set[str]] = {s: set() for s in ctx.subject_locations()}
    findings: list[CheckResult] = []
    for obj in objects:
        tenant = ctx.tenant_of[obj.schema]
        if obj.kind == "function":
            continue  # code in a tenant is the ``code`` check's FAIL, not an oddity here
        if obj.kind in ("r", "p") and obj.name in EXPECTED_TABLES:
            tables[obj.schema].add(obj.name)
        elif obj.kind == "f" and not ctx.is_allowed(obj.schema, obj.name):
            # Not an oddity: a door to another database or server, the tenant's rows included.
            findings.append(fail(NAME, tenant, f"{obj.schema}.{obj.name}",
                                 "foreign table in the tenant schema: it reads and writes "
                                 "another database or server; drop it, or accept it with "
                                 f"--allow {obj.schema}.{obj.name}",
                                 remedy=drop(ObjectAddress("foreign table",
                                                           (obj.schema, obj.name)))))
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
                                 "migrate or re-provision the tenant, or create them empty",
                                 remedy=create_missing(schema, missing)))
    return with_passes(NAME, ctx.subjects, findings, "-",
                       "DocEX tables present, nothing unexpected")


def create_missing(schema: str, missing: list[str]) -> str:
    """The head DDL of the ``missing`` tables (with their indexes) inside ``schema``, in one
    transaction: the tables come back empty, in dependency order; IF NOT EXISTS, so two
    findings about one table can both paste theirs."""
    statements = [s + ";" for s in table_statements("postgresql", missing, if_not_exists=True)]
    return "\n".join(["BEGIN;", f"SET LOCAL search_path = {quote_ident(schema)};",
                      *statements, "COMMIT;"])
