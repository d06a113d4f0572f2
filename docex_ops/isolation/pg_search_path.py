"""PostgreSQL: the configured search_path and the names that could shadow a tenant's.

DocEX connects with ``search_path = "<schema>", public``; a connection that
sets nothing gets the database/role default. A tenant schema on that default
is read by every connection that forgets to route, and a DocEX-named table,
view or function in ``public`` (or any other schema on the path) answers an
unqualified query when the tenant's own table is missing.
"""

from __future__ import annotations

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.isolation import pg_facts
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.expected import SHADOWABLE_NAMES, kind_label
from docex_ops.isolation.pg_remedy import rename
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, fail, warn

SEARCH_PATH = "search_path"
SHADOWING = "shadowing"
# DocEX itself puts public on every tenant connection's path.
DOCEX_SHARED_SCHEMAS = ("public",)


def parse_search_path(value: str, current_user: str) -> list[str]:
    """Schema names of a search_path setting, unquoted, with $user expanded."""
    names = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name = part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()
        names.append(current_user if name == "$user" else name)
    return names


def check_search_path(ctx: IsolationContext) -> list[CheckResult]:
    facts = pg_facts.server_facts(ctx.require_catalog())
    path = parse_search_path(facts.configured_search_path, facts.current_user)
    obj = f"search_path (set in {facts.search_path_source})"
    remedy = _without_tenants(ctx, facts)
    findings = [
        fail(SEARCH_PATH, ctx.tenant_of[schema], obj,
             f"the default search_path {facts.configured_search_path!r} names tenant schema "
             f"{schema}: every connection that does not route itself reads this tenant; "
             "remove it", remedy=remedy)
        for schema in path if schema in ctx.tenant_of and ctx.tenant_of[schema] in ctx.subject_set
    ]
    if not findings:
        findings.append(CheckResult(SEARCH_PATH, DEPLOYMENT, Status.PASS, obj,
                                    f"{facts.configured_search_path!r} names no tenant schema"))
    return findings


def _without_tenants(ctx: IsolationContext, facts: pg_facts.ServerFacts) -> str:
    """The same default search_path, set where it is set, without the tenant schemas."""
    kept = [part.strip() for part in facts.configured_search_path.split(",") if part.strip()
            and parse_search_path(part, facts.current_user)[0] not in ctx.tenant_of]
    value = ", ".join(kept)
    target = {"ALTER DATABASE": f"DATABASE {quote_ident(facts.database)}",
              "ALTER ROLE": f"ROLE {quote_ident(facts.current_user)}",
              "ALTER ROLE ... IN DATABASE": f"ROLE {quote_ident(facts.current_user)} IN DATABASE "
                                            f"{quote_ident(facts.database)}"}.get(
        facts.search_path_source)
    if target is None:  # postgresql.conf or ALTER SYSTEM
        literal = "'" + value.replace("'", "''") + "'"
        return (f"ALTER SYSTEM SET search_path = {literal};\nSELECT pg_reload_conf();" if value
                else "ALTER SYSTEM RESET search_path;\nSELECT pg_reload_conf();")
    return f"ALTER {target} SET search_path = {value};" if value else \
        f"ALTER {target} RESET search_path;"


def check_shadowing(ctx: IsolationContext) -> list[CheckResult]:
    conn = ctx.require_catalog()
    facts = pg_facts.server_facts(conn)
    configured = parse_search_path(facts.configured_search_path, facts.current_user)
    shared = [s for s in dict.fromkeys([*DOCEX_SHARED_SCHEMAS, *configured])
              if s not in ctx.tenant_of and s not in pg_facts.SYSTEM_SCHEMAS]
    shared = pg_facts.existing_schemas(conn, shared)
    findings = []
    for obj in pg_facts.objects_named(conn, shared, SHADOWABLE_NAMES):
        name = f"{obj.schema}.{obj.name}"
        if obj.kind == "function":
            findings.append(warn(SHADOWING, DEPLOYMENT, name,
                                 f"function named like DocEX table {obj.name} in {obj.schema}, "
                                 "which is on tenant search paths; rename or drop it"))
        else:
            kind = kind_label(obj.kind)
            findings.append(fail(SHADOWING, DEPLOYMENT, name,
                                 f"{kind} named like DocEX table {obj.name} in "
                                 f"{obj.schema}, which is on tenant search paths: a tenant "
                                 "missing the table reads this shared one; drop or rename it",
                                 remedy=rename(kind, (obj.schema, obj.name),
                                               f"{obj.name}_not_docex")))
    if not findings:
        findings.append(CheckResult(SHADOWING, DEPLOYMENT, Status.PASS,
                                    ", ".join(shared) or "-",
                                    "no DocEX-named object in the shared schemas on the path"))
    return findings
