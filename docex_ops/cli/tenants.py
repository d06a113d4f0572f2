"""``docex-ops tenants ...``: list, show, provision, drop."""

from __future__ import annotations

from typing import Any

import click

from docex_ops.backends import server_names
from docex_ops.backends.base import FOREIGN, UNREADABLE, TenantLockedError
from docex_ops.cleanup.run import find_leftovers
from docex_ops.cli.common import (
    OperationFailed,
    emit,
    format_option,
    info,
    is_json,
    state,
)
from docex_ops.cli.options import example, jobs_option
from docex_ops.cli.output import human_bytes, placement_problems, problem_entry
from docex_ops.cli.progress import TenantProgress
from docex_ops.move import movers
from docex_ops.move import run as moves
from docex_ops.tenancy import validate_all
from docex_ops.tenants import distribute as distributing
from docex_ops.tenants import lifecycle as ops
from docex_ops.topology import placement


@click.group()
def tenants() -> None:
    """Provision, inspect and drop tenants."""


@tenants.command("list", epilog=example(
    "docex-ops --format json tenants list"))
@format_option
def list_cmd(fmt: str | None) -> None:
    """Every tenant that exists (discovered from schemas or files), with its revision.

    With several servers, each tenant's server is shown, and every tenant the
    directory and the servers disagree about is listed as a problem (exit 1).
    """
    settings = state().settings
    listing = placement.list_placed(state().manager)
    found = listing.tenants
    rows: list[dict[str, Any]] = [
        {"tenant": t.tenant_id, "server": placement.server_of(t, settings), "node": t.node,
         "location": t.location, "revision": t.revision, "state": t.state,
         "tables": t.tables, "size": human_bytes(t.size_bytes)} for t in found]
    unreadable = [t for t in found if t.condition in UNREADABLE]
    # Never tenants; reported so that nothing a killed command left stays hidden.
    leftovers = find_leftovers(state().manager, temp=False)
    left = [{"kind": x.kind, "object": x.name, "where": x.where, "purpose": x.purpose,
             "held": x.held} for x in leftovers]
    problems: list[dict[str, Any]] = [{"tenant": p.tenant_id, "server": ",".join(p.servers) or None,
                 "node": None, "location": None, "revision": None, "state": "problem",
                 "tables": None, "size": None, "problem": p.message} for p in listing.problems]
    # The table leaves out server and node where no tenant has one (one plain server,
    # SQLite); JSON always carries both keys.
    shown = [c for c in ("tenant", "server", "node", "location", "revision", "state",
                         "tables", "size")
             if c not in ("server", "node") or any(r[c] for r in rows + problems)]
    emit(rows + problems, fmt, columns=shown + (["problem"] if problems else []), payload={
        "backend": settings.db_type, "servers": server_names(settings),
        "tenants": [dict(r, size_bytes=t.size_bytes, detail=t.detail)
                    for r, t in zip(rows, found, strict=True)],
        "leftovers": left},
        problems=placement_problems(listing.problems)
        + [problem_entry(f"{t.state}: {t.detail}", t.tenant_id) for t in unreadable])
    if left and not is_json(fmt):
        held = sum(x.held for x in leftovers)
        info(f"note: {len(left)} scratch object(s) are not tenants"
             + (f" ({held} in use by a running operation)" if held else "")
             + ": " + ", ".join(f"{x['object']} ({x['purpose']})" for x in left[:5])
             + (f" and {len(left) - 5} more" if len(left) > 5 else "")
             + "; `docex-ops cleanup` removes those nobody holds")
    for tenant in unreadable:
        info(str(tenant.detail))
    for tenant in found:  # reported, never a failure: it is simply not a tenant
        if tenant.condition == FOREIGN:
            info(f"tenant {tenant.tenant_id}: foreign: {tenant.detail}; docex-ops leaves it "
                 "alone")
    if listing.problems:
        for problem in listing.problems:
            info(problem.message)
        raise OperationFailed(f"{len(listing.problems)} tenant(s) with placement problems: "
                              + ", ".join(p.tenant_id for p in listing.problems))
    if unreadable:
        raise OperationFailed(f"{len(unreadable)} tenant(s) could not be read: "
                              + ", ".join(f"{t.tenant_id} ({t.state})" for t in unreadable))


@tenants.command("show", epilog=example(
    "docex-ops tenants show acme"))
@click.argument("tenant_id")
@format_option
def show_cmd(tenant_id: str, fmt: str | None) -> None:
    """One tenant: where it lives, its revision and its row counts."""
    manager = state().manager
    found = ops.find_tenant(manager, tenant_id)
    if found is None:
        raise LookupError(f"tenant {tenant_id!r} does not exist on {manager.settings.describe()}")
    if found.condition in UNREADABLE:  # reported, never opened
        raise OperationFailed(f"tenant {found.tenant_id} at {found.location}: {found.state}: "
                              f"{found.detail}")
    counts: dict[str, int] = {}
    if found.state != "empty":
        try:  # every table: DocEX's and any other the tenant holds
            contents = ops.tenant_contents(manager, tenant_id)
        except TenantLockedError as exc:  # locked since discovery looked
            raise OperationFailed(f"tenant {found.tenant_id} at {found.location}: locked: "
                                  f"{exc}") from exc
        counts = dict(contents.rows) if contents is not None else {}
    rows = [{"table": name, "rows": n} for name, n in counts.items()]
    where = placement.server_of(found, manager.settings)
    payload = {"tenant": found.tenant_id, "server": where, "node": found.node,
               "location": found.location,
               "state": found.state, "detail": found.detail,
               "revision": found.revision, "size_bytes": found.size_bytes, "rows": counts}
    if not is_json(fmt):  # all of it on stdout: it is the answer
        click.echo(f"tenant {found.tenant_id} at {found.location}"
                   f"{f' on server {where}' if where else ''}"
                   f"{f' (node {found.node})' if found.node else ''}: {found.state}, "
                   f"revision {found.revision or '-'}, {human_bytes(found.size_bytes)}")
        if found.detail:
            click.echo(f"{found.state}: {found.detail}")
    emit(rows, fmt, payload=payload)


@tenants.command("provision", epilog=example(
    "docex-ops tenants provision acme globex --verify -j 4"))
@click.argument("tenant_ids", nargs=-1, required=True)
@click.option("--verify", is_flag=True,
              help="After provisioning, write and delete a probe basket through the manager.")
@jobs_option(help_text="Tenants created at once, each in its own transaction.")
@click.option("--with-role", is_flag=True,
              help="PostgreSQL: also create a login-less role docex_t_<id> that owns only "
                   "the tenant's schema (the connecting user becomes a member).")
@click.option("--server", metavar="NAME", default=None,
              help="Put new tenants on this server (default: the one with the fewest tenants).")
@format_option
def provision_cmd(tenant_ids: tuple[str, ...], verify: bool, jobs: int, with_role: bool,
                  server: str | None,
                  fmt: str | None) -> None:
    """Create tenants (schema or file, all tables, stamped at head). Idempotent.

    Every id is checked against the tenant rules before anything is created.
    """
    manager = state().manager
    if with_role and not ops.has_roles(manager):
        raise click.UsageError("--with-role needs PostgreSQL: SQLite has no roles")
    if server is not None:
        ids = validate_all(tenant_ids)
        for tenant_id in ids:
            manager.backend.location(tenant_id)
        placement.reserve_server(manager, ids, server)
    with TenantProgress() as bar:
        results = ops.provision_tenants(manager, tenant_ids, verify=verify, jobs=jobs,
                                        progress=bar)
    rows = [{"tenant": r.tenant_id, "location": r.location,
             "action": "created" if r.created else ("failed" if r.error else "exists"),
             "verified": r.verified, "seconds": r.seconds, "error": r.error} for r in results]
    if with_role:
        for row in rows:
            row["role"] = None if row["error"] else ops.ensure_tenant_role(manager,
                                                                          str(row["tenant"]))
    emit(rows, fmt, payload={"tenants": rows},
         problems=[problem_entry(r.error or "verification failed", r.tenant_id) for r in results
                   if not r.ok or r.verified is False])
    failed = [r.tenant_id for r in results if not r.ok or r.verified is False]
    if failed:
        raise OperationFailed(f"{len(failed)} tenant(s) failed: {', '.join(failed)}")


def _said(fmt: str | None, line: str, payload: dict[str, Any]) -> None:
    """A command whose answer is one sentence: the sentence, or its facts as JSON."""
    if is_json(fmt):
        emit([], fmt, payload=payload)
    else:
        click.echo(line)


@tenants.command("place", epilog=example(
    "docex-ops tenants place acme --server b"))
@click.argument("tenant_id")
@click.option("--server", metavar="NAME", required=True, help="The server holding its schema.")
@format_option
def place_cmd(tenant_id: str, server: str, fmt: str | None) -> None:
    """Record an existing schema, found on SERVER but not in the tenant directory, as the
    tenant (after checking that it is the right copy). Refused if the tenant is recorded
    already or its schema is on any other server too."""
    placement.place_existing(state().manager, tenant_id, server)
    _said(fmt, f"tenant {tenant_id} recorded on server {server}",
          {"tenant": tenant_id, "server": server, "action": "recorded"})


@tenants.command("move", epilog=example(
    "docex-ops tenants move acme --to b"))
@click.argument("tenant_id")
@click.option("--to", "target", metavar="SERVER", default=None,
              help="The server to move the tenant to (Citus: the worker node, by its name "
                   "in database.postgres.nodes or as host:port).")
@click.option("--finish", is_flag=True,
              help="Drop the renamed source copy a completed move kept, and forget the move.")
@click.option("--offline", is_flag=True,
              help="Copy with pg_dump | pg_restore while the tenant's writes are refused "
                   "(for servers without wal_level=logical).")
@click.option("--dry-run", is_flag=True, help="With --finish: say what would be dropped.")
@click.option("--pg-bin", type=click.Path(file_okay=False), default=None,
              help="Directory of pg_dump/pg_restore/psql (default: PATH).")
@format_option
def move_cmd(tenant_id: str, target: str | None, finish: bool, offline: bool, dry_run: bool,
             pg_bin: str | None, fmt: str | None) -> None:
    """Move a tenant to another server online, with logical replication.

    The target gets the schema's structure, a subscription copies the rows and
    streams changes; then writes are frozen briefly on the source, the copy is
    checked (row counts and checksums) once it has caught up, the source schema
    is renamed <schema>_moved_<time> and the directory switched. The source
    server needs wal_level=logical. Rerunning after a crash completes the move
    or rolls it back. --finish drops the renamed copy afterwards.

    --offline: the tenant is frozen first (writes refused), then pg_dump -n |
    pg_restore copies it in one transaction on the target; the same checks,
    rename and switch follow. Writes resume on the target.

    Owners and grants come along (the tenant's role docex_t_<id> is created on
    the target if missing); a grant to another role the target lacks refuses
    the move before anything is made there.

    On Citus, Citus moves the distributed schema (citus_schema_move: logical
    replication, or --offline block_writes); offline, the counts and checksums
    before and after are compared in the transaction that moves; online, the
    source copy Citus switched from is compared with the target row by row.
    """
    manager = state().manager
    if finish:
        record = moves.finish_move(manager, tenant_id, dry_run)
        verb = "would drop" if dry_run else "dropped"
        _said(fmt, f"{verb} {record.old_schema} on server {record.source}",
              {"tenant": tenant_id, "server": record.source, "old_schema": record.old_schema,
               "action": verb, "dry_run": dry_run})
        return
    if target is None:
        raise click.UsageError("give --to SERVER (or --finish)")
    options = moves.MoveOptions(pg_bin=pg_bin, offline=offline)
    result = movers.move_tenant(manager, tenant_id, target, options)
    if result.outcome == "unchanged":
        info(f"tenant {result.tenant_id} is already on {result.target}; nothing was moved")
    moved = {"tenant": result.tenant_id, "from": result.source, "to": result.target,
             "outcome": result.outcome, "rows": result.rows,
             "freeze_s": None if result.freeze_seconds is None else
             round(result.freeze_seconds, 3), "seconds": round(result.seconds, 3),
             "old_schema": result.old_schema}
    emit([moved], fmt, payload=moved)


@tenants.command("rebalance", epilog=example(
    "docex-ops tenants rebalance --dry-run"))
@click.option("--dry-run", is_flag=True, help="Only plan (the default without --execute).")
@click.option("--execute", is_flag=True,
              help="Run the planned moves, one after another, with `tenants move`.")
@click.option("--offline", is_flag=True, help="With --execute: move with pg_dump | pg_restore "
              "(Citus: shard_transfer_mode block_writes).")
@click.option("--by-size", is_flag=True,
              help="Citus: plan with the by_disk_size strategy instead of by_shard_count.")
@click.option("--size-tolerance", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Even out sizes only while servers differ by more than this share of the "
                   "mean server size.")
@click.option("--pg-bin", type=click.Path(file_okay=False), default=None,
              help="Directory of pg_dump/pg_restore/psql (default: PATH).")
@format_option
def rebalance_cmd(dry_run: bool, execute: bool, offline: bool, by_size: bool,
                  size_tolerance: float, pg_bin: str | None, fmt: str | None) -> None:
    """Plan moves that even out tenant counts, then sizes, across servers.

    Counts first (to within one tenant per server), then sizes (a move or a swap
    between the largest and the smallest server, while it narrows the gap by more
    than --size-tolerance). Nothing moves unless --execute is given; tenants with
    a move not yet finished (--finish) are counted but never planned.

    On Citus the plan is Citus's (get_rebalance_table_shards_plan, one row per
    tenant schema) and --execute runs citus_rebalance_start, follows the job
    until it ends, then checks each moved tenant's node and row counts.
    """
    if dry_run and execute:
        raise click.UsageError("give --dry-run or --execute, not both")
    manager = state().manager
    plan = movers.plan_rebalance(manager, size_tolerance, by_size)
    for before, after in zip(plan.before, plan.after, strict=True):
        info(f"server {before.server}: {before.tenants} tenants, "
             f"{human_bytes(before.size_bytes)} -> {after.tenants} tenants, "
             f"{human_bytes(after.size_bytes)}")
    rows = [{"tenant": m.tenant_id, "from": m.source, "to": m.target,
             "size": human_bytes(m.size_bytes), "moved": None} for m in plan.moves]
    if execute and plan.moves:
        options = moves.MoveOptions(pg_bin=pg_bin, offline=offline)
        with TenantProgress() as bar:
            results = movers.execute_plan(manager, plan, options, on_move=bar)
        for row, result in zip(rows, results, strict=True):
            row["moved"] = result.outcome
    emit(rows, fmt, payload={"before": plan.before, "after": plan.after,
                             "moves": [dict(r, size_bytes=m.size_bytes)
                                       for r, m in zip(rows, plan.moves, strict=True)],
                             "executed": execute,
                             "unfinished_moves": plan.unfinished_moves},
         problems=placement_problems(plan.problems))
    if plan.problems:
        raise OperationFailed(f"{len(plan.problems)} tenant(s) with placement problems were "
                              "left out of the plan: see `docex-ops tenants list`")


@tenants.command("distribute", epilog=example("docex-ops tenants distribute --all --dry-run"))
@click.argument("tenant_ids", nargs=-1)
@click.option("--all", "every", is_flag=True,
              help="Every tenant schema that is not distributed yet.")
@click.option("--dry-run", is_flag=True, help="List what would be distributed, change nothing.")
@format_option
def distribute_cmd(tenant_ids: tuple[str, ...], every: bool, dry_run: bool,
                   fmt: str | None) -> None:
    """Citus: make tenant schemas that live on the coordinator distributed schemas
    (citus_schema_distribute), each in its own transaction; Citus places its tables
    together on one worker node."""
    if not tenant_ids and not every:
        raise click.UsageError("give tenant ids or --all")
    results = distributing.distribute_tenants(state().manager, tenant_ids, every, dry_run)
    rows = [{"tenant": r.tenant_id, "location": r.location, "outcome": r.outcome,
             "node": r.node, "seconds": round(r.seconds, 3), "error": r.error}
            for r in results]
    emit(rows, fmt, payload={"tenants": rows})
    failed = [r.tenant_id for r in results if not r.ok]
    if failed:
        raise OperationFailed(f"{len(failed)} tenant(s) were not distributed: "
                              + ", ".join(failed))


# drop has a module of its own (several tenants, one row each).
from docex_ops.cli.tenants_drop import drop_cmd  # noqa: E402

tenants.add_command(drop_cmd)
