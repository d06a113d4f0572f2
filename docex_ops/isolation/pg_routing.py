"""PostgreSQL live routing, through the TenantDatabaseManager as DocEX would use it.

Per tenant: the connection's ``current_schema()`` and ``current_schemas(false)``
name that tenant first and no other tenant; every unqualified DocEX table
resolves into the tenant schema; a canary basket written inside a rolled-back
transaction lands in the tenant's own ``docbasket`` and the transaction wrote
to no other table (its row locks show any trigger or rule that copied it
elsewhere). Since every other tenant's connection resolves ``docbasket`` to
its own table, none of them can see the canary: the proof is the resolution,
not an N x N probe. Engines the check opens are closed right after, so 1,000
tenants never hold 1,000 pools.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from docex_ops.isolation import pg_facts
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.pg_contents import create_missing
from docex_ops.isolation.results import CheckResult, Status, fail, warn
from docex_ops.schema.names import TABLE_NAMES

NAME = "routing"


def check_routing(ctx: IsolationContext) -> list[CheckResult]:
    """Tenant connections opened ``ctx.jobs`` at once (-j); each opened, probed, closed."""
    already_open = set(ctx.manager.list_tenant_databases())
    return ctx.each_subject(lambda t: _check_tenant(ctx, t, already_open))


def _check_tenant(ctx: IsolationContext, tenant: str, already_open: set[str]) -> list[CheckResult]:
    obj = f"connection of tenant {tenant}"
    try:
        probe = _probe(ctx, tenant)
    except (RuntimeError, SQLAlchemyError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [fail(NAME, tenant, obj, f"routing probe failed: {cause}")]
    finally:
        if tenant not in already_open:
            ctx.manager.close_tenant_connection(tenant)
    findings = judge_probe(ctx, tenant, probe)
    if findings:
        return findings
    return [CheckResult(NAME, tenant, Status.PASS, obj,
                        f"search_path {', '.join(probe.path)}; canary stayed in "
                        f"{ctx.tenants[tenant]}.docbasket and was rolled back")]


def _probe(ctx: IsolationContext, tenant: str) -> pg_facts.RoutingProbe:
    engine = ctx.manager.get_tenant_engine(tenant)
    canary = f"bas_{uuid.uuid4().hex}"
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            return pg_facts.probe_routing(conn, TABLE_NAMES, canary, now)
        finally:
            transaction.rollback()  # the canary never exists outside this transaction


def judge_probe(ctx: IsolationContext, tenant: str,
                probe: pg_facts.RoutingProbe) -> list[CheckResult]:
    schema = ctx.tenants[tenant]
    obj = f"connection of tenant {tenant}"
    # A connection whose route is off carries session state (a SET without LOCAL): ending
    # the tenant's pooled connections (application_name docex:<id>, see the backend) ends it.
    reset = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
             f"current_database() AND application_name = {_literal('docex:' + tenant)};")
    findings = []
    if probe.current_schema != schema:
        findings.append(fail(NAME, tenant, obj, f"current_schema() is {probe.current_schema}, "
                             f"expected {schema}", remedy=reset))
    for other_schema in probe.path:
        other = ctx.tenant_of.get(other_schema)
        if other is not None and other != tenant:
            findings.append(fail(NAME, tenant, obj, f"search_path {', '.join(probe.path)} "
                                 f"includes {other_schema} of tenant {other!r}", remedy=reset))
    for table, where in sorted(probe.resolved.items()):
        if where != schema:
            findings.append(fail(NAME, tenant, f"{obj}: {table}",
                                 f"unqualified {table} resolves to {where or 'nothing'}, "
                                 f"not {schema}", remedy=create_missing(schema, [table])))
    if probe.canary_schema != schema:
        findings.append(fail(NAME, tenant, f"{obj}: canary", f"canary basket landed in "
                             f"{probe.canary_schema or 'no visible table'}, not {schema}",
                             remedy=create_missing(schema, ["docbasket"])))
    copiers = "\n".join(probe.copiers) or None
    for written in probe.wrote_to:
        written_schema = written.split(".", 1)[0]
        other = ctx.tenant_of.get(written_schema)
        if other is not None and other != tenant:
            findings.append(fail(NAME, tenant, written, f"writing the canary also wrote to "
                                 f"{written} of tenant {other!r} (a trigger or rule copies rows)",
                                 remedy=copiers))
        elif written_schema != schema:
            findings.append(warn(NAME, tenant, written, f"writing the canary also wrote to "
                                 f"{written} outside the tenant; check what copies rows there",
                                 remedy=copiers))
    return findings


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
