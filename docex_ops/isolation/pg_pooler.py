"""PostgreSQL deployment: connections that go through a pooler in transaction mode.

With ``database.postgres.pooler: none`` tenant engines route with ``search_path`` set
at connect time; behind a transaction-mode pooler (PgBouncer, pgcat, ...) a server
connection set up for one tenant serves the next tenant's transactions, so the route
leaks. With a ``pgbouncer_*`` mode every transaction routes itself (SET LOCAL, checked).
When ``pooler_admin`` is configured the pool mode is read from PgBouncer's console;
otherwise it is guessed from ports and application names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.config.pooler import NONE
from docex_ops.isolation import pg_facts
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, fail, warn

if TYPE_CHECKING:
    from docex_ops.pools.pgbouncer import BouncerView

NAME = "pooler"
PGBOUNCER_DEFAULT_PORT = 6432
_LEAK = ("if it runs in transaction mode, the search_path set at connect time leaks between "
         "tenants: use session mode, or route with SET LOCAL inside each transaction")
_PER_TRANSACTION = ("every tenant transaction routes itself (SET LOCAL search_path, checked "
                    "in the same round trip): nothing set at connect time can leak")


def check_pooler(ctx: IsolationContext) -> list[CheckResult]:
    pooler = ctx.settings.pooler
    if pooler.admin is not None:
        from docex_ops.pools.pgbouncer import read_bouncer

        return judge_console(pooler.mode, read_bouncer(pooler.admin))
    if pooler.per_transaction:
        return [CheckResult(NAME, DEPLOYMENT, Status.PASS, f"pooler {pooler.mode}",
                            _PER_TRANSACTION + " (pool mode not read: configure "
                            "database.postgres.pooler_admin to read it)")]
    app = pooler.application
    facts = pg_facts.server_facts(ctx.require_catalog())
    return judge_pooler(app.port if app else ctx.settings.postgres.port, facts)


def judge_console(mode: str, view: BouncerView) -> list[CheckResult]:
    """What PgBouncer's console says its pool mode is, against the routing configured."""
    where = f"pgbouncer {view.target}"
    if view.pool_mode == "statement":
        return [fail(NAME, DEPLOYMENT, where, "PgBouncer runs pool_mode = statement: a "
                     "tenant transaction of several statements cannot be routed; use "
                     "transaction or session mode")]
    if view.pool_mode == "transaction" and mode == NONE:
        return [fail(NAME, DEPLOYMENT, where, "PgBouncer runs pool_mode = transaction and "
                     "docex-ops routes at connect time: " + _LEAK,
                     remedy="set database.postgres.pooler: pgbouncer_transaction")]
    detail = (_PER_TRANSACTION if mode != NONE else
              "session mode: a server connection serves one client for its lifetime")
    return [CheckResult(NAME, DEPLOYMENT, Status.PASS, where,
                        f"PgBouncer runs pool_mode = {view.pool_mode}; {detail}")]


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
