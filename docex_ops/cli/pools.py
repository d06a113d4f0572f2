"""``docex-ops pools ...``: connection report and idle-connection cleanup."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from docex_ops import pools as ops
from docex_ops.cli.common import emit, format_option, info, is_json, state, stream
from docex_ops.cli.options import Duration, example, selection_options
from docex_ops.cli.output import problem_entry
from docex_ops.cli.pools_render import report_data

if TYPE_CHECKING:
    from docex_ops.migrate.plan import Selection


@click.group()
def pools() -> None:
    """Connection usage per tenant, and cleanup of idle tenant connections."""


@pools.command("report", epilog=example(
    "docex-ops --format json pools report --watch 5s"))
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
    shown = 0
    while True:
        report = ops.build_report(manager)
        if is_json(fmt):  # --watch: one compact envelope per line (newline-delimited)
            warnings = [problem_entry(w) for w in report.warnings]
            if watch is None:
                emit([], fmt, payload=report_data(report), problems=warnings)
            else:
                stream(report_data(report), warnings)
        else:
            if watch is not None and sys.stdout.isatty():
                click.clear()
            click.echo(ops.render_report(report, "table"))
        shown += 1
        if watch is None or (count is not None and shown >= count):
            return
        time.sleep(watch)


@pools.command("close-idle", epilog=example(
    "docex-ops pools close-idle --idle-for 10min --dry-run"))
@click.option("--idle-for", "idle_for", type=Duration(), required=True,
              help="Idle at least this long: 90s, 10min, 1h30min (a bare number is seconds).")
@selection_options
@click.option("--dry-run", is_flag=True, help="List what would be terminated, terminate nothing.")
@format_option
def close_idle_cmd(idle_for: float, selection: Selection, dry_run: bool,
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
    candidates = ops.find_idle(manager, idle_for, selection.named(), selection.exclude)
    for c in candidates:
        where = "" if c.server is None else f" on server {c.server}"
        info(f"{'would terminate' if dry_run else 'terminating'} pid {c.pid}{where} "
             f"(docex:{c.tenant_id}, {c.state} for {c.idle_s:.0f}s)")
    if dry_run:
        result = ops.CloseIdleResult(candidates, [], dry_run=True)
    else:
        result = ops.terminate(manager, candidates, idle_for)
    rows: list[dict[str, Any]] = [{
        "server": c.server, "pid": c.pid, "tenant": c.tenant_id, "state": c.state,
        "idle_s": c.idle_s, "action": "would terminate" if dry_run else
        ("terminated" if result.was_terminated(c) else "skipped (no longer idle)")}
        for c in candidates]
    # pids repeat across servers: each one is named with its server (null: one server)
    payload: dict[str, Any] = {
        "dry_run": dry_run, "idle_for_s": idle_for, "connections": rows,
        "terminated": [{"server": c.server, "pid": c.pid} for c in result.terminated],
        "skipped": [{"server": c.server, "pid": c.pid} for c in result.skipped]}
    shown = rows if manager.settings.fleet else [
        {k: v for k, v in r.items() if k != "server"} for r in rows]
    emit(shown, fmt, payload=payload)
