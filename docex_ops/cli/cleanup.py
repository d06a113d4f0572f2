"""``docex-ops cleanup``: remove the scratch objects interrupted operations left."""

from __future__ import annotations

from pathlib import Path

import click

from docex_ops.cleanup import run as ops
from docex_ops.cli.common import OperationFailed, emit, format_option, info, is_json, state
from docex_ops.cli.options import example
from docex_ops.cli.output import problem_entry


@click.command("cleanup", epilog=example(
    "docex-ops cleanup --dry-run --backups /backups/nightly"))
@click.option("--dry-run", is_flag=True,
              help="List what would be removed and what is held; remove nothing.")
@click.option("--backups", "backup_dirs", multiple=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Also clean this backup folder (partial archives and manifests; "
                   "repeatable).")
@format_option
def cleanup_cmd(dry_run: bool, backup_dirs: tuple[Path, ...], fmt: str | None) -> None:
    """Remove scratch objects no running operation holds.

    Restores, restore checks, splits, adoption and backups work in scratch
    objects (schemas and roles named docex$..., files and folders named
    .docex-..., backups' .partial files) that a killed process leaves behind.
    Searched: every configured server (PostgreSQL) or the storage root (SQLite),
    the temp folder, and each --backups DIR. Objects a running operation holds
    are kept. One audit line per removal. Exit 1 if a removal failed.
    """
    report = ops.cleanup(state().manager, backup_dirs, dry_run)
    rows = [{"kind": i.leftover.kind, "object": i.leftover.name, "where": i.leftover.where,
             "purpose": i.leftover.purpose, "action": i.action, "error": i.error}
            for i in report.items]
    emit(rows, fmt, payload={"dry_run": dry_run, "ok": report.ok, "objects": rows},
         problems=[problem_entry(f"{r['object']}: {r['error']}") for r in rows
                   if r["action"] == ops.FAILED])
    if not is_json(fmt):
        verb = "would remove" if dry_run else "removed"
        done = report.count(ops.WOULD_REMOVE if dry_run else ops.REMOVED)
        info(f"{verb} {done}, kept {report.count(ops.KEPT)} held by a running operation, "
             f"{report.count(ops.FAILED)} failed" if report.items else "no leftovers")
    if not report.ok:
        failed = [i.leftover.name for i in report.items if i.action == ops.FAILED]
        raise OperationFailed(f"{len(failed)} leftover(s) could not be removed: "
                              f"{', '.join(failed)}")
