"""``docex-ops tenants drop ID...``: parse, call tenants.drops, render one row per tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from docex_ops.backends.guards import DEFAULT_SAFETY_DIR
from docex_ops.cli.common import OperationFailed, emit, format_option, info, state
from docex_ops.cli.options import example, jobs_option
from docex_ops.cli.output import problem_entry
from docex_ops.cli.progress import TenantProgress
from docex_ops.tenancy import validate_all
from docex_ops.tenants import drops


@click.command("drop", epilog=example(
    "docex-ops tenants drop acme globex --tenants-file retired.txt --yes --force"))
@click.argument("tenant_ids", nargs=-1)
@click.option("--tenants-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File with one tenant id per line (# comments allowed), dropped too.")
@click.option("--exclude", multiple=True, help="Leave this tenant out (repeatable).")
@click.option("--yes", is_flag=True, help="Confirm: the schemas or files are deleted.")
@click.option("--force", is_flag=True,
              help="Drop tenants that hold rows too (each is backed up first).")
@click.option("--safety-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Where --force backs each tenant up first (default: ./{DEFAULT_SAFETY_DIR}).")
@click.option("--pg-bin", type=click.Path(file_okay=False), default=None,
              help="Folder holding pg_dump (default: PATH).")
@click.option("--dry-run", is_flag=True,
              help="Run the drop's checks per tenant and say what would be dropped; drop "
                   "nothing (exits as the real run would).")
@jobs_option(help_text="Tenants dropped at once, each in its own transaction.")
@format_option
def drop_cmd(tenant_ids: tuple[str, ...], tenants_file: Path | None, exclude: tuple[str, ...],
             yes: bool, force: bool, safety_dir: Path | None, pg_bin: str | None,
             dry_run: bool, jobs: int, fmt: str | None) -> None:
    """Drop tenants' schemas or files, each in its own transaction.

    Refuses without --yes. Every id is checked and every tenant looked up before
    anything is dropped (a hostile id or an unknown tenant drops nothing). A tenant
    that holds rows in any table is refused unless --force (then it is backed up
    first, while held against writers, and the backup's path is printed); objects
    outside the tenant that depend on it, and schemas or files that are not DocEX
    tenants, are refused even with --force. A refused tenant does not stop the
    others; the exit code is 1 when any was not dropped.
    """
    from docex_ops.migrate.plan import Selection  # the file's reading, shared

    named = Selection(tenant_ids, (), tenants_file).named()  # hostile ids: exit 2 here
    validate_all(exclude)
    if not named:
        raise click.UsageError("nothing to drop: name the tenants (ID... or --tenants-file)")
    if not yes and not dry_run:
        raise click.UsageError(f"dropping {', '.join(named)} deletes "
                               f"{'it' if len(named) == 1 else 'them'}; add --yes to confirm")
    manager = state().manager
    with TenantProgress() as bar:
        results = drops.drop_tenants(manager, named, exclude, allow_data=force,
                                     safety_dir=safety_dir, pg_bin=pg_bin, dry_run=dry_run,
                                     progress=bar, jobs=jobs)
    for r in results:
        if r.safety_backup is not None:
            info(f"tenant {r.tenant_id} held {r.rows} rows; backed it up first to "
                 f"{r.safety_backup}")
        if r.role is not None:
            info(f"tenant {r.tenant_id}: role {r.role.role} "
                 f"{'dropped' if r.role.dropped else 'left'}: {r.role.why}")
    rows = [_row(r) for r in results]
    shown = [c for c in ("tenant", "location", "action", "rows", "safety_backup",
                         "backup_into", "role", "error") if any(row[c] is not None
                                                                for row in rows)
             or c in ("tenant", "location", "action")]
    table = [dict(row, role=None if r.role is None else
                  f"{r.role.role} {'dropped' if r.role.dropped else 'left'}")
             for row, r in zip(rows, results, strict=True)]
    emit(table, fmt, columns=shown,
         payload={"dry_run": dry_run, "needs_yes": not yes, "tenants": rows},
         problems=[problem_entry(r.error, r.tenant_id) for r in results if r.error])
    if dry_run and not yes:
        info("dry run: nothing was dropped; the real run needs --yes")
    failed = [r for r in results if not r.ok]
    if failed:
        verb = "would not be dropped" if dry_run else "not dropped"
        raise OperationFailed(f"{len(failed)} of {len(results)} tenant(s) {verb}: "
                              + "; ".join(f"{r.tenant_id} ({r.action}: {r.error})"
                                          for r in failed))


def _row(r: drops.TenantDrop) -> dict[str, Any]:
    return {"tenant": r.tenant_id, "location": r.location, "action": r.action, "rows": r.rows,
            "safety_backup": None if r.safety_backup is None else str(r.safety_backup),
            "backup_into": None if r.backup_into is None else str(r.backup_into),
            "role": None if r.role is None else {"role": r.role.role, "dropped": r.role.dropped,
                                                 "why": r.role.why},
            "error": r.error}
