"""PostgreSQL privileges: PUBLIC has no right on a tenant, no tenant role reaches another
tenant (by grant, ownership or role membership), and who can read each tenant."""

from __future__ import annotations

from collections.abc import Iterable

from docex_ops.isolation import pg_facts
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.pg_remedy import owner_to, revoke, revoke_membership
from docex_ops.isolation.pg_roles import first_step, walk
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, fail, warn, with_passes
from docex_ops.tenancy import role_name_for

PRIVILEGES = "privileges"
READERS = "readers"
PUBLIC = "PUBLIC"


def check_privileges(ctx: IsolationContext) -> list[CheckResult]:
    conn = ctx.require_catalog()
    schemas = ctx.subject_locations()
    role_of = {t: role_name_for(t) for t in ctx.tenants}
    graph = pg_facts.role_graph(conn, list(role_of.values()))
    tenant_of_role = {r: t for t, r in role_of.items() if r in graph.existing}
    # Every right a tenant role holds comes from itself or a role it belongs to: per
    # right holder, the tenant roles that hold its rights (one lookup per grant).
    holders: dict[str, set[str]] = {}
    for tenant_role in tenant_of_role:
        for held in walk(tenant_role, graph.member_of):
            holders.setdefault(held, set()).add(tenant_role)
    findings: list[CheckResult] = []
    for g in pg_facts.grants(conn, schemas):
        tenant, obj = ctx.tenant_of[g.schema], _object(g.schema, g.object)
        names = _names(g.schema, g.object)
        if g.grantee == PUBLIC:
            findings.append(fail(PRIVILEGES, tenant, obj, f"PUBLIC has {g.privilege}: every role "
                                 "can use it; revoke it",
                                 remedy=revoke([g.privilege], g.kind, names, PUBLIC)))
        for role in _other_tenant_roles(g.grantee, role_of[tenant], holders):
            via = "" if role == g.grantee else f" through role {g.grantee}"
            remedy = (revoke([g.privilege], g.kind, names, role) if role == g.grantee
                      else revoke_membership(first_step(graph.member_of, role, g.grantee), role))
            findings.append(fail(PRIVILEGES, tenant, obj,
                                 f"role {role} of tenant {tenant_of_role[role]!r} has "
                                 f"{g.privilege}{via}; revoke it", remedy=remedy))
    for o in pg_facts.owners(conn, schemas):
        tenant, obj = ctx.tenant_of[o.schema], _object(o.schema, o.object)
        own = role_of[tenant]
        rightful = own if own in graph.existing else ctx.settings.postgres.user
        names = _names(o.schema, o.object)
        for role in _other_tenant_roles(o.owner, own, holders):
            via = "owns it" if role == o.owner else f"inherits ownership through role {o.owner}"
            remedy = (owner_to(o.kind, names, rightful) if role == o.owner
                      else revoke_membership(first_step(graph.member_of, role, o.owner), role))
            findings.append(fail(PRIVILEGES, tenant, obj,
                                 f"role {role} of tenant {tenant_of_role[role]!r} {via}",
                                 remedy=remedy))
        if not o.object and tenant_of_role and own in graph.existing and o.owner != own:
            findings.append(warn(PRIVILEGES, tenant, obj, f"owned by {o.owner}, not by the "
                                 f"tenant role {own}", remedy=owner_to("schema", names, own)))
    results = with_passes(PRIVILEGES, ctx.subjects, list(dict.fromkeys(findings)), "-",
                          "no PUBLIC right, no other tenant's role has a right")
    if not tenant_of_role:
        results.append(CheckResult(PRIVILEGES, DEPLOYMENT, Status.PASS, "tenant roles",
                                   "no tenant roles (docex_t_<id>) configured: isolation rests on "
                                   "routing alone; see `tenants provision --with-role`"))
    return results


def check_readers(ctx: IsolationContext) -> list[CheckResult]:
    """Informational: who, besides owners and superusers, can read each tenant."""
    conn = ctx.require_catalog()
    schemas = ctx.subject_locations()
    graph = pg_facts.role_graph(conn, [])
    usage: dict[str, set[str]] = {s: set() for s in schemas}
    select: dict[str, set[str]] = {s: set() for s in schemas}
    for g in pg_facts.grants(conn, schemas):
        if not g.object and g.privilege == "USAGE":
            usage[g.schema].add(g.grantee)
        elif g.object and g.privilege == "SELECT":
            select[g.schema].add(g.grantee)
    members = _members(graph.member_of)
    owner = {o.schema: o.owner for o in pg_facts.owners(conn, schemas) if not o.object}
    results = []
    for schema in schemas:
        readers = (usage[schema] & select[schema]) | members.get(owner[schema], set())
        readers -= graph.superusers | {owner[schema]}
        shown = ", ".join(sorted(readers)) or "nobody else"
        results.append(CheckResult(READERS, ctx.tenant_of[schema], Status.PASS, schema,
                                   f"owner {owner[schema]}; readers besides owner and "
                                   f"superusers: {shown}"))
    return results


def _object(schema: str, name: str) -> str:
    return f"schema {schema}" if not name else f"{schema}.{name}"


def _names(schema: str, name: str) -> tuple[str, ...]:
    return (schema, name) if name else (schema,)


def _other_tenant_roles(grantee: str, own_role: str,
                        holders: dict[str, set[str]]) -> Iterable[str]:
    return sorted(holders.get(grantee, set()) - {own_role})


def _members(member_of: dict[str, frozenset[str]]) -> dict[str, set[str]]:
    """Group role -> every role that (transitively) belongs to it."""
    result: dict[str, set[str]] = {}
    for member in member_of:
        for group in walk(member, member_of) - {member}:
            result.setdefault(group, set()).add(member)
    return result
