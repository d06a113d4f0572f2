"""PostgreSQL live probe: as tenant A's own role, try to read and write what is not A's.

The catalog checks reason about rights; this proves the reasoning on the
server itself. For a sample of the tenants that have their own role
(``tenants provision --with-role``), spread over all of them, the probe does
``SET ROLE docex_t_<id>`` and tries SELECT, INSERT, UPDATE and DELETE on every
table of a few other tenants, SELECT on every relation of ``public`` and of
docex-ops' control schema, and CREATE in ``public``, each with a statement
that touches no row, inside a transaction that is rolled back. It first reads
its own tenant: if that fails the denials prove nothing, and it says so. Any
success is a FAIL naming both tenants, with the REVOKE of the grant (or the
membership) that allowed it. Without tenant roles there is no one to act as:
a WARN says the proof was not possible and why.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from sqlalchemy.exc import SQLAlchemyError

from docex_ops.backends.postgres import PostgresBackend
from docex_ops.isolation import pg_probe_session as probe
from docex_ops.isolation import pg_remedy
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.pg_roles import Graph, role_facts
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, fail, warn
from docex_ops.tenancy import role_name_for

NAME = "probe"
ACTORS = 20   # tenants acted as, spread evenly over those with a role
TARGETS = 3   # other tenants each actor tries (the next ones in id order)
WORKERS = 3   # actors probed at once, each on one connection of the admin pool
CONTROL_TABLE = "docbasket"  # read as the tenant itself first: the probe works


def check_probe(ctx: IsolationContext) -> list[CheckResult]:
    graph = role_facts(ctx)
    with_role = [t for t in ctx.subjects if role_name_for(t) in graph.roles]
    if not with_role:
        return [ctx.judged(warn(
            NAME, DEPLOYMENT, "tenant roles",
            "not proven by trying: no tenant has its own role (docex_t_<id>), so there is no "
            "one to act as; isolation rests on the catalog checks and on routing alone. Give "
            "tenants roles with `docex-ops tenants provision ID --with-role`, or accept it "
            "with --allow probe"), NAME)]
    everyone = sorted(ctx.tenants)
    actors = spread(with_role, ACTORS)
    plan = {a: neighbours(everyone, a, TARGETS) for a in actors}
    shared = ["public", ctx.settings.postgres.control_schema]
    relations = probe.targets(ctx.require_catalog(), sorted(
        {ctx.tenants[t] for a, ts in plan.items() for t in (a, *ts)} | set(shared)))
    backend = cast(PostgresBackend, ctx.backend)  # registered for PostgreSQL only

    def run(actor: str) -> list[CheckResult]:
        return _probe_one(ctx, backend, graph, actor, plan[actor], relations, shared)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        per_actor = list(pool.map(run, actors))
    results = [r for rows in per_actor for r in rows]
    without = [t for t in ctx.subjects if t not in with_role]
    summary = (f"acted as {len(actors)} of the {len(with_role)} tenant(s) with a role, each "
               f"against {min(TARGETS, len(everyone) - 1)} other tenant(s), "
               f"{' and '.join(shared)}; the catalog checks cover every tenant")
    results.append(CheckResult(NAME, DEPLOYMENT, Status.PASS, "sample", summary))
    if without:
        shown = ", ".join(without[:5]) + (f" and {len(without) - 5} more" if len(without) > 5
                                          else "")
        results.append(warn(NAME, DEPLOYMENT, "tenant roles",
                            f"not proven by trying for {len(without)} tenant(s) without their own "
                            f"role ({shown}): `docex-ops tenants provision ID --with-role`"))
    return results


def spread(items: list[str], count: int) -> list[str]:
    """``count`` of ``items`` evenly spaced (all when there are fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def neighbours(everyone: list[str], tenant: str, count: int) -> list[str]:
    """The ``count`` tenants after ``tenant`` in id order, wrapping around."""
    at = everyone.index(tenant)
    return [everyone[(at + i) % len(everyone)] for i in range(1, len(everyone))][:count]


def _probe_one(ctx: IsolationContext, backend: PostgresBackend, graph: Graph, actor: str,
               others: list[str], relations: dict[str, list[probe.Target]],
               shared: list[str]) -> list[CheckResult]:
    role, own = role_name_for(actor), ctx.tenants[actor]
    control = [t for t in relations[own] if t.name == CONTROL_TABLE][:1]
    tries = [*control, *(t for o in others for t in relations[ctx.tenants[o]]),
             *(t for s in shared for t in relations.get(s, ()))]
    obj = f"as role {role}"
    try:
        attempts = probe.act_as(backend.admin_engine, role, tries, ["public"],
                                ctx.settings.lock_timeout)
    except (SQLAlchemyError, probe.ProbeError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [warn(NAME, actor, obj, f"not proven: cannot act as {role}: {cause}")]
    count = sum(len(t.actions) for t in control)
    mine, theirs = attempts[:count], attempts[count:]
    refused = [f"{a.action}: {a.outcome}" for a in mine if a.outcome != probe.ALLOWED]
    if not mine or refused:
        seen = "; ".join(refused) or f"there is no {own}.{CONTROL_TABLE}"
        return [warn(NAME, actor, obj, f"not proven: as {role}, using its own "
                     f"{own}.{CONTROL_TABLE} failed ({seen}), so denials elsewhere prove nothing")]
    allowed: dict[tuple[str, str], list[str]] = defaultdict(list)
    unproven = []
    for a in theirs:
        if a.outcome == probe.ALLOWED:
            allowed[(a.schema, a.name)].append(a.action)
        elif a.outcome != probe.DENIED:
            unproven.append(f"{a.action} {a.schema}.{a.name or '*'}: {a.outcome}")
    findings = [_success(ctx, graph, actor, role, schema, name, actions)
                for (schema, name), actions in allowed.items()]
    if unproven:
        findings.append(warn(NAME, actor, obj, f"{len(unproven)} attempt(s) not proven (neither "
                             f"allowed nor denied): {'; '.join(unproven[:3])}"))
    if findings:
        return findings
    return [CheckResult(NAME, actor, Status.PASS, obj,
                        f"{len(theirs)} attempt(s) all denied: SELECT, INSERT, UPDATE, DELETE on "
                        f"the tables of {', '.join(map(repr, others))}, SELECT on "
                        f"{' and '.join(shared)}, CREATE in public; rolled back")]


def _success(ctx: IsolationContext, graph: Graph, actor: str, role: str, schema: str, name: str,
             actions: list[str]) -> CheckResult:
    victim = ctx.tenant_of.get(schema)
    what = f"{schema}.{name}" if name else f"schema {schema}"
    whose = f" of tenant {victim!r}" if victim else ""
    detail = (f"as role {role} of tenant {actor!r} the probe could {', '.join(actions)} "
              f"{'in ' if not name else ''}{what}{whose} (rolled back)")
    remedy = _remedy(ctx, graph, role, schema, name, actions)
    result = fail(NAME, victim or actor, what, detail + "; revoke what allows it, or accept "
                  f"it with --allow {what}", remedy=remedy)
    return ctx.judged(result, what, name) if name else ctx.judged(result, what)


def _remedy(ctx: IsolationContext, graph: Graph, role: str, schema: str, name: str,
            actions: list[str]) -> str:
    """REVOKE each grant the role uses (its own or PUBLIC's), or the membership through
    which it holds one."""
    kind, names = ("table", (schema, name)) if name else ("schema", (schema,))
    statements = []
    for grantee, privilege, column in probe.causes(ctx.require_catalog(), role, schema, name,
                                                   actions):
        if privilege == "OWNER" and grantee == role:
            statements.append(pg_remedy.owner_to(kind, names, ctx.settings.postgres.user))
        elif grantee not in (role, pg_remedy.PUBLIC):
            statements.append(pg_remedy.revoke_membership(graph.first_step(role, grantee), role))
        elif column:
            statements.append(pg_remedy.revoke([privilege], "column", (*names, column), grantee))
        else:
            statements.append(pg_remedy.revoke([privilege], kind, names, grantee))
    if graph.roles.get(role) and graph.roles[role].superuser:
        statements.append(f"ALTER ROLE {pg_remedy.role_sql(role)} NOSUPERUSER;")
    return pg_remedy.joined(statements) or pg_remedy.revoke(["ALL"], kind, names, role)
