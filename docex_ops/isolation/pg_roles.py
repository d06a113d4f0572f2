"""PostgreSQL roles: nobody but the tenant's own role and the operators reaches a tenant.

A role reaches a tenant by a grant (on the schema, a relation, a column, a
routine, a type), by owning something there, or by belonging (directly or
through other roles) to a role that does. Every such role other than the
tenant's own role (``docex_t_<id>``) and the operator roles
(``isolation.allowed_roles``, the configured user always among them) is a FAIL
per tenant, with the REVOKE that removes it; roles of other tenants are the
``privileges`` check's. Belonging to an operator role or to
``pg_read_all_data``/``pg_write_all_data`` reaches every tenant at once: one FAIL
for the deployment. Login roles that are superusers, can SET ROLE to one, have
CREATEROLE (before PostgreSQL 16 they may grant themselves any non-superuser role) or
bypass row-level security are listed as WARN with what they reach.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from docex_ops.isolation import pg_facts, pg_remedy
from docex_ops.isolation import pg_facts_access as access
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, fail, warn, with_passes
from docex_ops.tenancy import role_name_for

NAME = "roles"
READ_ALL = ("pg_read_all_data", "pg_write_all_data")
SHOWN = 6  # rights named in one row; the remedy always has them all


@dataclass
class Reach:
    """What one role holds on one tenant, and the statements that take it away."""

    rights: list[str] = field(default_factory=list)
    remedy: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Graph:
    roles: dict[str, access.Role]
    member_of: dict[str, frozenset[str]]     # role -> roles it directly belongs to
    members: dict[str, frozenset[str]]       # role -> roles that directly belong to it

    def below(self, role: str) -> set[str]:
        """Every role that belongs to ``role``, directly or through others."""
        return walk(role, self.members) - {role}

    def first_step(self, member: str, group: str) -> str:
        return first_step(self.member_of, member, group)


def walk(start: str, edges: dict[str, frozenset[str]]) -> set[str]:
    """``start`` and every role reached from it along ``edges`` (member_of: the roles it
    belongs to, transitively; members: the roles that belong to it)."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), frozenset()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def first_step(member_of: dict[str, frozenset[str]], member: str, group: str) -> str:
    """The role ``member`` directly belongs to on its shortest way to ``group``: revoking
    that membership cuts the way."""
    paths = {g: g for g in sorted(member_of.get(member, ()))}
    todo = list(paths)
    while todo and group not in paths:
        current = todo.pop(0)
        for up in sorted(member_of.get(current, ())):
            if up not in paths:
                paths[up] = paths[current]
                todo.append(up)
    return paths.get(group, group)


def role_facts(ctx: IsolationContext) -> Graph:
    """The cluster's roles and memberships, read once per snapshot."""
    def read() -> Graph:
        conn = ctx.require_catalog()
        member_of = pg_facts.role_graph(conn, []).member_of
        members: dict[str, set[str]] = defaultdict(set)
        for member, groups in member_of.items():
            for group in groups:
                members[group].add(member)
        return Graph({r.name: r for r in access.roles(conn)}, member_of,
                     {g: frozenset(m) for g, m in members.items()})
    return ctx.fact("roles", read)


def check_roles(ctx: IsolationContext) -> list[CheckResult]:
    graph = role_facts(ctx)
    operators = ctx.operator_roles
    own = {t: role_name_for(t) for t in ctx.tenants}
    tenant_roles = set(own.values())
    superusers = {n for n, r in graph.roles.items() if r.superuser}
    skip = operators | tenant_roles | superusers
    reach: dict[tuple[str, str], Reach] = defaultdict(Reach)
    owner_of = {t: (own[t] if own[t] in graph.roles else ctx.settings.postgres.user)
                for t in ctx.tenants}
    holders = access.holders(ctx.require_catalog(), ctx.subject_locations())
    reaching: dict[str, set[str]] = {}  # right holder -> the roles that use its rights
    for h in holders:
        if h.grantee == access.PUBLIC or h.grantee in operators:
            continue  # PUBLIC: the privileges check's; operators: allowed, members below
        if h.grantee not in reaching:
            reaching[h.grantee] = {h.grantee, *graph.below(h.grantee)} - skip
        tenant = ctx.tenant_of[h.schema]
        for role in reaching[h.grantee] - {own[tenant]}:
            _record(reach[(tenant, role)], h, role, graph, owner_of[tenant])
    findings = [_finding(ctx, tenant, role, r, graph) for (tenant, role), r in reach.items()]
    everywhere = _members_of_everything(ctx, graph, operators | superusers, findings)
    findings += _powerful_logins(ctx, graph, operators, holders)
    return with_passes(NAME, ctx.subjects, findings, "-",
                       "only the tenant's own role and the operators reach the tenant",
                       also_flagged=ctx.subjects if everywhere else ())


def _record(into: Reach, h: access.Holder, role: str, graph: Graph, new_owner: str) -> None:
    target = ".".join(h.names) + (f"({h.args})" if h.args else "")
    what = f"{h.kind} {target}"
    if role != h.grantee:
        via = "owner" if h.privilege == access.OWNER else f"{h.privilege}"
        into.rights.append(f"{via} of {what} through role {h.grantee}")
        into.remedy.append(pg_remedy.revoke_membership(graph.first_step(role, h.grantee), role))
    elif h.privilege == access.OWNER:
        into.rights.append(f"owns {what}")
        into.remedy.append(pg_remedy.owner_to(h.kind, h.names, new_owner, h.args))
    else:
        into.rights.append(f"{h.privilege} on {what}")
        into.remedy.append(pg_remedy.revoke([h.privilege], h.kind, h.names, role, h.args))


def _finding(ctx: IsolationContext, tenant: str, role: str, r: Reach, graph: Graph) -> CheckResult:
    attrs = graph.roles.get(role)
    login = " (LOGIN)" if attrs and attrs.login else ""
    rls = ", BYPASSRLS: row-level security does not stop it" if attrs and attrs.bypassrls else ""
    shown = "; ".join(r.rights[:SHOWN]) + (f"; +{len(r.rights) - SHOWN} more"
                                            if len(r.rights) > SHOWN else "")
    result = fail(NAME, tenant, f"role {role}",
                  f"role {role}{login} reaches tenant {tenant!r}{rls}: {shown}; it is neither "
                  "the tenant's role nor an operator: revoke it, list it in "
                  f"isolation.allowed_roles, or accept it with --allow {role}",
                  remedy=pg_remedy.joined(r.remedy))
    return ctx.judged(result, role)


def _members_of_everything(ctx: IsolationContext, graph: Graph, trusted: frozenset[str] | set[str],
                           findings: list[CheckResult]) -> bool:
    """A FAIL per role that belongs to an operator or to pg_read/write_all_data."""
    found = False
    for group in sorted(ctx.operator_roles | set(READ_ALL)):
        for role in sorted(graph.below(group) - trusted):
            found = True
            reaches = ("reads every table" if group == "pg_read_all_data" else
                       "writes every table" if group == "pg_write_all_data" else
                       f"has every right of the operator {group}")
            findings.append(ctx.judged(fail(
                NAME, DEPLOYMENT, f"role {role}",
                f"role {role} belongs to {group}: it {reaches}, in every tenant; revoke the "
                f"membership, or accept it with --allow {role}",
                remedy=pg_remedy.revoke_membership(graph.first_step(role, group), role)), role))
    return found


def _powerful_logins(ctx: IsolationContext, graph: Graph, operators: frozenset[str],
                     holders: list[access.Holder]) -> list[CheckResult]:
    """Superusers (or who can become one), CREATEROLE and BYPASSRLS logins, with what they
    reach."""
    supers = {n for n, r in graph.roles.items() if r.superuser}
    schemas_of: dict[str, set[str]] = defaultdict(set)
    for h in holders:
        schemas_of[h.grantee].add(h.schema)
    below_super = {s: graph.below(s) for s in supers}
    rows = []
    for name, role in sorted(graph.roles.items()):
        if not role.login:
            continue
        via = sorted(s for s in supers if name in below_super[s])
        if role.superuser or via:
            how = "SUPERUSER" if role.superuser else f"can SET ROLE to superuser {via[0]}"
            detail = f"{how}: reads and writes every tenant ({len(ctx.subjects)}), no right needed"
            remedy = (f"ALTER ROLE {pg_remedy.role_sql(name)} NOSUPERUSER;" if role.superuser
                      else pg_remedy.revoke_membership(graph.first_step(name, via[0]), name))
        elif role.createrole and _major(ctx) < 16:  # 16 needs ADMIN on the role granted
            detail = ("CREATEROLE: it can grant itself any tenant's role (and with it the "
                      "tenant), and create roles that can")
            remedy = f"ALTER ROLE {pg_remedy.role_sql(name)} NOCREATEROLE;"
        elif role.bypassrls:
            reached = sorted({ctx.tenant_of[s] for g in {name, *_above(name, graph)}
                              for s in schemas_of.get(g, ())})
            detail = ("BYPASSRLS: row-level security does not apply to it; it reaches "
                      + (", ".join(map(repr, reached)) if reached else "no tenant (no right)"))
            remedy = f"ALTER ROLE {pg_remedy.role_sql(name)} NOBYPASSRLS;"
        else:
            continue
        if name in operators:
            rows.append(CheckResult(NAME, DEPLOYMENT, Status.PASS, f"role {name}",
                                    f"operator (isolation.allowed_roles), {detail}"))
        else:
            rows.append(ctx.judged(warn(NAME, DEPLOYMENT, f"role {name}",
                                        f"login role {name} is {detail}; accept it with "
                                        f"--allow {name}", remedy=remedy), name))
    return rows


def _major(ctx: IsolationContext) -> int:
    return int((ctx.require_catalog().dialect.server_version_info or (0,))[0])


def _above(role: str, graph: Graph) -> set[str]:
    return walk(role, graph.member_of) - {role}
