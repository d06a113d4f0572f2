"""PostgreSQL: nothing outside the tenants reaches into one.

A view, materialized view, routine, trigger, rule, policy, default or foreign
table in a schema that is no tenant's (``public`` first of all) that depends on
a tenant's object (``pg_depend``) or whose text names a tenant schema (routine
bodies, view queries, trigger arguments, options), and every publication that
streams a tenant's rows: each gives whoever may use it the tenant's rows with
its owner's rights, so each is a FAIL naming the object, with the DROP that
removes it. docex-ops' own move publication of the tenant moving is not one.
"""

from __future__ import annotations

from collections import defaultdict

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.isolation import pg_facts_code as code
from docex_ops.isolation import pg_remedy
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.pg_references import names_in
from docex_ops.isolation.pg_roles import role_facts
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, fail, with_passes
from docex_ops.move.pg_online import replication_name
from docex_ops.tenancy import TENANT_ROLE_PREFIX

NAME = "reach_in"


def check_reach_in(ctx: IsolationContext) -> list[CheckResult]:
    conn = ctx.require_catalog()
    schemas = list(ctx.tenants.values())  # all: an object reaching any tenant is found
    reasons: dict[tuple[str, code.ObjectAddress], list[str]] = defaultdict(list)
    for dep in code.references_into(conn, schemas):
        if dep.address is not None:
            reasons[(dep.ref_schema, dep.address)].append(f"depends on {dep.referenced}")
    definers: list[code.Definition] = []
    for definition in code.outside_definitions(conn, schemas):
        named = names_in(definition.text)
        for schema in sorted(named & ctx.tenant_of.keys()):
            reasons[(schema, definition.address)].append(f"its definition names {schema}")
        if definition.definer and not named & ctx.tenant_of.keys():
            definers.append(definition)  # one naming a tenant is already a finding above
    findings = [_finding(ctx, schema, obj, why) for (schema, obj), why in reasons.items()
                if ctx.tenant_of[schema] in ctx.subject_set]
    findings += [_definer(ctx, d, "execute" in names_in(d.text)) for d in definers
                 if _reaches_tenants(ctx, d.definer) and _callable_by_others(ctx, d)]
    everyone = _publications(ctx, findings) or any(r.tenant == DEPLOYMENT for r in findings)
    return with_passes(NAME, ctx.subjects, findings, "-",
                       "nothing outside the tenants depends on or names this tenant",
                       also_flagged=ctx.subjects if everyone else ())


def _finding(ctx: IsolationContext, schema: str, obj: code.ObjectAddress,
             why: list[str]) -> CheckResult:
    tenant = ctx.tenant_of[schema]
    names = pg_remedy.allow_names(obj)
    result = fail(NAME, tenant, pg_remedy.label(obj),
                  f"outside the tenants, reaches tenant {tenant!r}: "
                  f"{'; '.join(dict.fromkeys(why))}. Whoever may use it reaches the tenant's "
                  f"rows with its owner's rights: drop it, or accept it with --allow {names[-1]}",
                  remedy=pg_remedy.drop(obj))
    return ctx.judged(result, *names)


def _reaches_tenants(ctx: IsolationContext, role: str) -> bool:
    """Whether ``role`` can reach any tenant: a superuser, an operator, a tenant role."""
    found = role_facts(ctx).roles.get(role)
    return bool(found and found.superuser) or role in ctx.operator_roles or (
        role.startswith(TENANT_ROLE_PREFIX))


def _callable_by_others(ctx: IsolationContext, definition: code.Definition) -> bool:
    """Whether someone besides the operators and superusers may EXECUTE it."""
    graph = role_facts(ctx)
    return any(r == "PUBLIC" or (r not in ctx.operator_roles and not (
        r in graph.roles and graph.roles[r].superuser)) for r in definition.executors)


def _definer(ctx: IsolationContext, definition: code.Definition, dynamic: bool) -> CheckResult:
    """A SECURITY DEFINER routine outside the tenants, owned by a role that reaches them and
    callable by others: it names no tenant, yet what it does (or what it calls) runs with
    rights on every tenant. With dynamic SQL, whoever calls it picks the statement."""
    names = pg_remedy.allow_names(definition.address)
    how = ("with dynamic SQL (EXECUTE): callers choose the statement, against any tenant"
           if dynamic else "and whatever it calls runs with those rights too")
    callers = ", ".join(definition.executors)
    result = fail(NAME, DEPLOYMENT, pg_remedy.label(definition.address),
                  f"SECURITY DEFINER, owned by {definition.definer}, who reaches the tenants, "
                  f"callable by {callers} {how}; drop it (or revoke EXECUTE from all but the "
                  f"operators), or accept it with --allow {names[-1]}",
                  remedy=pg_remedy.drop(definition.address))
    return ctx.judged(result, *names)


def _publications(ctx: IsolationContext, findings: list[CheckResult]) -> bool:
    """Adds a FAIL per publication of tenant rows; True if one publishes every table."""
    conn = ctx.require_catalog()
    major = int((conn.dialect.server_version_info or (0,))[0])
    everyone = False
    for pub in code.publications(conn, list(ctx.tenants.values()), major * 10000):
        label = f"publication {pub.name}"
        if not pub.schema:
            everyone = True
            findings.append(ctx.judged(fail(
                NAME, DEPLOYMENT, label, "FOR ALL TABLES: every tenant's rows stream to whoever "
                f"subscribes; drop it, or accept it with --allow {pub.name}",
                remedy=f"DROP PUBLICATION {quote_ident(pub.name)};"), pub.name))
            continue
        tenant = ctx.tenant_of[pub.schema]
        if tenant not in ctx.subject_set or pub.name == replication_name(pub.schema):
            continue  # not judged here, or docex-ops moving this very tenant
        what, remedy = (f"table {pub.schema}.{pub.table}",
                        f"TABLE {pg_remedy.qualified(pub.schema, pub.table)}") if pub.table else (
                        f"schema {pub.schema}", f"TABLES IN SCHEMA {quote_ident(pub.schema)}")
        findings.append(ctx.judged(fail(
            NAME, tenant, label, f"publishes {what} of tenant {tenant!r}: its rows stream to "
            f"whoever subscribes; drop it from the publication, or accept it with --allow "
            f"{pub.name}", remedy=f"ALTER PUBLICATION {quote_ident(pub.name)} DROP {remedy};"),
            pub.name))
    return everyone
