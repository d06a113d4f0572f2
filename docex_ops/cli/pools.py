"""``docex-ops pools ...``: connection report and idle-connection cleanup."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from docex_ops import pools as ops
from docex_ops.cli.common import emit, format_option, info, state
from docex_ops.cli.options import Duration


@click.group()
def pools() -> None:
    """Connection usage per tenant, and cleanup of idle tenant connections."""


@pools.command("report")
@click.option("--watch", type=Duration(minimum=0.5), default=None, metavar="DURATION",
              help="Refresh every DURATION (1s, 500ms, 1min) until interrupted.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="With --watch: stop after this many reports.")
@format_option
def report_cmd(watch: float | None, count: int | None, fmt: str | None) -> None:
    """What the server sees, per tenant and in total, against its limits.

    PostgreSQL: tenant connections by state (from application_name
    'docex:<tenant>' in pg_stat_activity), totals against max_connections and
    superuser_reserved_connections, the worst case tenants x (pool_size +
    max_overflow) with a WARN and a recommendation when it can exceed the
    server, and connections that belong to no tenant. SQLite: tenant files,
    their size and WAL size, and which processes hold them open (from /proc).

    Several servers: each server on its own (limits, connections, the tenants
    the directory places there, its capacity and budget), tables grouped by
    server, `server` on every tenant row and connection in --format json, and
    every warning naming its server.
    """
    manager = state().manager
    chosen = fmt or state().fmt
    shown = 0
    while True:
        text = ops.render_report(ops.build_report(manager), chosen)
        if watch is not None and chosen == "table" and sys.stdout.isatty():
            click.clear()
        click.echo(text)
        shown += 1
        if watch is None or (count is not None and shown >= count):
            return
        time.sleep(watch)


@pools.command("close-idle")
@click.option("--idle-for", "idle_for", type=Duration(), required=True,
              help="Idle at least this long: 90s, 10min, 1h30min (a bare number is seconds).")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--dry-run", is_flag=True, help="List what would be terminated, terminate nothing.")
@format_option
def close_idle_cmd(idle_for: float, tenants: tuple[str, ...], dry_run: bool,
                   fmt: str | None) -> None:
    """Terminate docex tenant connections idle (or idle in transaction) longer than
    --idle-for, with pg_terminate_backend (PostgreSQL).

    Only connections named 'docex:<tenant>' in the configured database are
    ever touched; each is listed before anything happens, and each is checked
    again at the moment of the kill, so one that became active is left alone.
    An idle transaction that is terminated is rolled back by the server.
    With several servers every server's database is searched, and each
    connection is named with its server.
    """
    manager = state().manager
    candidates = ops.find_idle(manager, idle_for, tenants)
    for c in candidates:
        where = "" if c.server is None else f" on server {c.server}"
        info(f"{'would terminate' if dry_run else 'terminating'} pid {c.pid}{where} "
             f"(docex:{c.tenant_id}, {c.state} for {c.idle_s:.0f}s)")
    if dry_run:
        result = ops.CloseIdleResult(candidates, [], dry_run=True)
    else:
        result = ops.terminate(manager, candidates, idle_for)
    fleet = manager.settings.fleet
    rows: list[dict[str, Any]] = []
    for c in candidates:
        row: dict[str, Any] = {"server": c.server} if fleet else {}
        rows.append(row | {
            "pid": c.pid, "tenant": c.tenant_id, "state": c.state, "idle_s": c.idle_s,
            "action": "would terminate" if dry_run else
            ("terminated" if result.was_terminated(c) else "skipped (no longer idle)")})
    payload: dict[str, Any] = {"dry_run": dry_run, "idle_for_s": idle_for, "connections": rows}
    if fleet:  # pids repeat across servers: name each one's server
        payload |= {"terminated": [{"server": c.server, "pid": c.pid} for c in result.terminated],
                    "skipped": [{"server": c.server, "pid": c.pid} for c in result.skipped]}
    else:
        payload |= {"terminated": result.terminated_pids,
                    "skipped": [c.pid for c in result.skipped]}
    emit(rows, fmt, payload=payload)
