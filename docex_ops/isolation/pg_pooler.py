"""PostgreSQL deployment: connections that go through a pooler in transaction mode.

Tenant engines route with ``search_path`` set at connect time; behind a
transaction-mode pooler (PgBouncer, pgcat, ...) a server connection set up for
one tenant serves the next tenant's transactions, so the route leaks.
"""

from __future__ import annotations

from docex_ops.isolation import pg_facts
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, warn

NAME = "pooler"
PGBOUNCER_DEFAULT_PORT = 6432
_LEAK = ("if it runs in transaction mode, the search_path set at connect time leaks between "
         "tenants: use session mode, or route with SET LOCAL inside each transaction")


def check_pooler(ctx: IsolationContext) -> list[CheckResult]:
    facts = pg_facts.server_facts(ctx.require_catalog())
    return judge_pooler(ctx.settings.postgres.port, facts)


def judge_pooler(configured_port: int, facts: pg_facts.ServerFacts) -> list[CheckResult]:
    findings = []
    if configured_port != facts.server_port:
        findings.append(warn(NAME, DEPLOYMENT, f"port {configured_port}",
                             f"docex-ops connects to port {configured_port} but the server "
                             f"listens on {facts.server_port}: a pooler or proxy is in between; "
                             + _LEAK))
    elif configured_port == PGBOUNCER_DEFAULT_PORT:
        findings.append(warn(NAME, DEPLOYMENT, f"port {configured_port}",
                             f"port {PGBOUNCER_DEFAULT_PORT} is PgBouncer's default; " + _LEAK))
    if facts.pooler_clients:
        findings.append(warn(NAME, DEPLOYMENT, "pg_stat_activity",
                             f"pooler connections on this database "
                             f"(application_name {', '.join(facts.pooler_clients)}); " + _LEAK))
    if not findings:
        findings.append(CheckResult(NAME, DEPLOYMENT, Status.PASS, f"port {configured_port}",
                                    "direct connection to the server, no pooler seen"))
    return findings
