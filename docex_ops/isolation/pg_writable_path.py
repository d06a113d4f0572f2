"""PostgreSQL: nobody but the operators can create objects in a schema on a search path.

Every DocEX connection searches ``public`` after its tenant schema, and a role
or database default may name more. Whoever can CREATE in one of those schemas
can put there a table that answers for a tenant's missing one, or a function
or operator that a better-matching argument type makes win over the built-in
one (CVE-2018-1058): code that then runs as the application or the operator,
in every tenant. PostgreSQL 15 no longer grants CREATE on ``public`` to PUBLIC;
a re-grant, a grant to a tenant role or any other non-operator role, or a
schema owned by one, is a FAIL with the REVOKE (or ALTER ... OWNER) that
removes it. Members of an operator role are the ``roles`` check's finding.
"""

from __future__ import annotations

from collections import defaultdict

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.isolation import pg_facts_access as access
from docex_ops.isolation import pg_remedy
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.pg_facts import SYSTEM_SCHEMAS
from docex_ops.isolation.pg_roles import Graph, role_facts
from docex_ops.isolation.pg_search_path import DOCEX_SHARED_SCHEMAS, parse_search_path
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, fail
from docex_ops.tenancy import role_name_for

NAME = "writable_path"
_USER = "$user"


EVERYONE = ""  # a path every connection may start with (database, server, DocEX's own)


def path_schemas(ctx: IsolationContext) -> dict[str, dict[str, set[str]]]:
    """Every non-tenant schema some connection searches -> where it is put on the path ->
    whose connections search it (EVERYONE, or the one role an ALTER ROLE names)."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for schema in DOCEX_SHARED_SCHEMAS:
        found[schema]["every DocEX tenant connection"].add(EVERYONE)
    # "$user" is the connecting role: the named one, or whoever connects without one of
    # its own; the connections that matter are the operators'.
    connecting = sorted(ctx.operator_roles)
    for setting in access.path_settings(ctx.require_catalog()):
        where = setting.source + (f" {setting.role}" if setting.role else "")
        for name in parse_search_path(setting.value, _USER):
            for schema in ([setting.role] if name == _USER and setting.role else
                           connecting if name == _USER else [name]):
                found[schema][where].add(setting.role or EVERYONE)
    system = {*SYSTEM_SCHEMAS, "pg_temp"}
    return {s: w for s, w in found.items() if s not in ctx.tenant_of and s not in system}


def check_writable_path(ctx: IsolationContext) -> list[CheckResult]:
    graph = role_facts(ctx)
    on_path = path_schemas(ctx)
    operators = ctx.operator_roles
    trusted = operators | {n for n, r in graph.roles.items() if r.superuser}
    tenant_of_role = {role_name_for(t): t for t in ctx.tenants}
    rights = access.create_rights(ctx.require_catalog(), sorted(on_path))
    holders: dict[str, set[str]] = defaultdict(set)
    owners: dict[str, str] = {}
    for right in rights:
        holders[right.schema].update({right.holder, right.owner})
        owners[right.schema] = right.owner
    findings = []
    for schema, held in sorted(holders.items()):
        where = ", ".join(on_path[schema])
        # On the path of some roles only: each of them may write where only it searches.
        searchers = set().union(*on_path[schema].values())
        harmless = set() if EVERYONE in searchers else searchers
        for holder in sorted(held - trusted):
            reach = {holder} if holder == access.PUBLIC else {holder, *graph.below(holder)}
            for role in sorted(reach - trusted - harmless):
                findings.append(_finding(ctx, schema, where, role, holder, owners[schema],
                                         graph, tenant_of_role.get(role)))
    if not findings:
        shown = ", ".join(sorted(on_path)) or "-"
        return [CheckResult(NAME, DEPLOYMENT, Status.PASS, shown,
                            "only operators can create objects in the schemas on a search path")]
    return findings


def _finding(ctx: IsolationContext, schema: str, where: str, role: str, holder: str, owner: str,
             graph: Graph, tenant: str | None) -> CheckResult:
    who = ("PUBLIC (every role)" if role == access.PUBLIC else
           f"the role {role} of tenant {tenant!r}" if tenant else f"role {role}")
    if role != holder:
        how, remedy = (f"through role {holder}",
                       pg_remedy.revoke_membership(graph.first_step(role, holder), role))
    elif role == owner:
        how, remedy = ("as its owner", f"ALTER SCHEMA {quote_ident(schema)} OWNER TO "
                                       f"{quote_ident(ctx.settings.postgres.user)};")
    else:
        how, remedy = ("by a grant", f"REVOKE CREATE ON SCHEMA {quote_ident(schema)} "
                                     f"FROM {pg_remedy.role_sql(role)};")
    result = fail(NAME, DEPLOYMENT, f"schema {schema}",
                  f"{who} can CREATE in {schema} ({how}), which is on the search path of "
                  f"{where}: a table there answers for a tenant's missing one and a function "
                  "or operator there can capture the application's calls; revoke it, or "
                  f"accept it with --allow {schema}.{role}", remedy=remedy)
    return ctx.judged(result, f"{schema}.{role}")
