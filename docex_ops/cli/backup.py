"""``docex-ops backup ...``: create, verify, restore, list, prune."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from docex_ops import backup as ops
from docex_ops.cli.common import (
    OperationFailed,
    UsageProblem,
    emit,
    format_option,
    info,
    state,
)
from docex_ops.cli.options import example, jobs_option, selection_options
from docex_ops.cli.output import human_bytes, problem_entry, to_jsonable, utc_time
from docex_ops.cli.progress import TenantProgress
from docex_ops.tenancy import validate_all

if TYPE_CHECKING:
    from docex_ops.migrate.plan import Selection

_PG_BIN = click.option("--pg-bin", type=click.Path(file_okay=False),
                       help="Folder holding pg_dump/pg_restore/psql (default: PATH).")
_ALLOW_EXTRA = click.option(
    "--allow-extra-objects", "allow_extra", is_flag=True,
    help="Also restore the tenant's own tables DocEX does not have (with their indexes, "
         "constraints and sequences), created by a temporary role that can touch nothing "
         "but the scratch copy. Functions, views, triggers, types, ... are refused anyway.")


@click.group()
def backup() -> None:
    """Back up, verify and restore tenants; each archive has a JSON manifest beside it
    (revision, per-table row counts and checksums, archive sha256, tool versions)."""


@backup.command("create")
@selection_options
@click.option("--all", "all_tenants", is_flag=True, help="Back up every tenant.")
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for archives and manifests (created if missing).")
@jobs_option(help_text="Archives written at the same time.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=None,
              help="PostgreSQL: schemas per pg_dump (default: sized to the server's lock "
                   "budget; 1 = one archive per tenant).")
@_PG_BIN
@format_option
def create_cmd(selection: Selection, all_tenants: bool, dest: Path, jobs: int,
               batch_size: int | None, pg_bin: str | None, fmt: str | None) -> None:
    """Archive tenants in the database's own format (pg_dump custom format; SQLite's
    online backup API), consistent while DocEX writes. Exits 1 if any tenant failed;
    the others are still backed up. A tenant an application keeps locked beyond the lock
    timeout (--lock-timeout) fails as `locked` (pg_dump --lock-wait-timeout).

    Example: docex-ops backup create --all --exclude scratch -j 4 --dest /backups/nightly
    """
    tenant_ids = selection.named()
    if bool(tenant_ids) == all_tenants:
        raise click.UsageError("name tenants with --tenant ID (repeatable) or --tenants-file, "
                               "or pass --all (not both)")
    manager = state().manager
    with TenantProgress() as bar:
        results = ops.create_backups(manager, list(tenant_ids) if tenant_ids else None, dest,
                                     jobs=jobs, pg_bin=pg_bin, batch_size=batch_size,
                                     progress=bar, exclude=selection.exclude)
        missing = [r.tenant_id for r in results if r.missing]
        if missing and len(missing) == len(results):  # nothing was attempted: one line
            raise UsageProblem(f"tenant(s) {', '.join(map(repr, missing))} do not exist on "
                               f"{manager.settings.describe()}; `docex-ops tenants list` "
                               "shows the tenants")
    rows = [{"tenant": r.tenant_id, "rows": r.rows, "size": human_bytes(r.size_bytes),
             "seconds": r.seconds, "status": "ok" if r.ok else "FAILED",
             "archive": r.archive.name if r.archive else None, "error": r.error}
            for r in results]
    emit(rows, fmt, payload={"backups": [
        dict(row, size_bytes=r.size_bytes, archive=str(r.archive) if r.archive else None,
             manifest=str(r.manifest) if r.manifest else None)
        for row, r in zip(rows, results, strict=True)]},
        problems=[problem_entry(r.error or "failed", r.tenant_id) for r in results if not r.ok])
    if missing:
        raise UsageProblem(f"tenant(s) {', '.join(map(repr, missing))} do not exist on "
                           f"{manager.settings.describe()}; the others were backed up; "
                           "`docex-ops tenants list` shows the tenants")
    failed = [r.tenant_id for r in results if not r.ok]
    if failed:
        raise OperationFailed(f"{len(failed)} of {len(results)} tenant(s) failed: "
                              f"{', '.join(failed)}")
    if not results:
        info("no tenants to back up")


@backup.command("verify", epilog=example(
    "docex-ops backup verify /backups/nightly --restore-check"))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--restore-check", is_flag=True,
              help="Also restore each backup into a scratch schema/file (as backup restore "
                   "does: our DDL, the archive's rows), compare every table's count and "
                   "checksum with the manifest, then drop the scratch copy.")
@_ALLOW_EXTRA
@_PG_BIN
@selection_options
@jobs_option(help_text="Archives verified at once (with --restore-check, each restored "
                       "into a scratch place of its own).")
@format_option
def verify_cmd(path: Path, restore_check: bool, allow_extra: bool, pg_bin: str | None,
               selection: Selection, jobs: int, fmt: str | None) -> None:
    """Check archives against their manifests (PATH: an archive, a manifest or a folder):
    the signature (with backup.signing_key_file), size and sha256."""
    manager = state().manager if restore_check else None
    key = ops.signing_key(state().settings)
    try:
        with TenantProgress("archives") as bar:
            results = ops.verify_path(path, manager, pg_bin, key, allow_extra,
                                      selection.named(), validate_all(selection.exclude),
                                      progress=bar, jobs=jobs)
    except ops.BackupUsageError as exc:
        raise UsageProblem(str(exc)) from exc
    rows = [{"tenant": r.tenant_id, "archive": r.archive.name, "sha256": r.sha256_ok,
             "authenticated": r.authenticated,
             "restore_check": r.restore_checked if restore_check else None,
             "status": "ok" if r.ok else "FAILED", "problems": "; ".join(r.problems)}
            for r in results]
    emit(rows, fmt, payload={"archives": [dict(row, manifest=str(r.manifest))
                                          for row, r in zip(rows, results, strict=True)]},
         problems=[problem_entry(f"{r.archive.name}: {p}", r.tenant_id)
                   for r in results for p in r.problems])
    if key is None:
        info(f"note: no backup.signing_key_file is configured, so {len(results)} manifest(s) "
             "are unauthenticated: anyone who can write to the backup folder could have "
             "changed them (and recomputed their sha256)")
    bad = [r for r in results if not r.ok]
    if bad:
        raise OperationFailed(f"{len(bad)} of {len(results)} backup(s) failed verification")


@backup.command("restore", epilog=example(
    "docex-ops backup restore /backups/nightly/acme.<time>.manifest.json --as acme_copy"))
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_tenant", metavar="NEW_ID",
              help="Restore under this tenant id (default: the id in the manifest).")
@click.option("--from-tenant", metavar="ID",
              help="Which tenant to take from a batch archive holding several.")
@click.option("--force", is_flag=True,
              help="Replace an existing tenant, an empty one included (one holding rows "
                   "is backed up first).")
@click.option("--upgrade", is_flag=True, help="Migrate the restored tenant to head.")
@click.option("--safety-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where --force backs up the tenant being replaced "
                   "(default: <archive folder>.safety/ beside the archive's folder).")
@_ALLOW_EXTRA
@_PG_BIN
@format_option
def restore_cmd(archive: Path, as_tenant: str | None, from_tenant: str | None, force: bool,
                upgrade: bool, safety_dir: Path | None, allow_extra: bool, pg_bin: str | None,
                fmt: str | None) -> None:
    """Restore a tenant from ARCHIVE (an archive or its manifest). The tenant is built
    from docex-ops' own DDL for the manifest's revision and only the archive's rows are
    loaded; an archive holding anything else (functions, views, triggers, objects in
    other schemas, ...) is refused before anything is created. The copy is checked
    against the manifest (every table's count and checksum) before it replaces
    anything; on a mismatch it is removed and the command exits 1."""
    try:
        result = ops.restore_backup(state().manager, archive, as_tenant, from_tenant, force,
                                    upgrade, safety_dir, pg_bin, allow_extra, note=info)
    except ops.BackupUsageError as exc:
        raise UsageProblem(str(exc)) from exc
    if result.safety_backup is not None:
        info(f"tenant {result.tenant_id} held data; backed it up first to "
             f"{result.safety_backup}")
    emit([{"tenant": result.tenant_id, "from": result.source_tenant_id,
           "location": result.location, "revision": result.upgraded_to or result.revision,
           "rows": result.rows, "verified": True, "replaced": result.replaced_existing,
           "seconds": result.seconds}], fmt, payload=result)


@backup.command("list", epilog=example(
    "docex-ops backup list /backups/nightly"))
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@format_option
def list_cmd(folder: Path, fmt: str | None) -> None:
    """Every backup under FOLDER, by tenant and time."""
    try:
        entries = ops.list_backups(folder)
    except ops.BackupUsageError as exc:
        raise UsageProblem(str(exc)) from exc
    rows = [{"tenant": e.tenant_id, "finished": e.finished_at, "revision": e.revision,
             "rows": e.rows, "archive": e.archive.name,
             "present": e.archive_present, "kind": e.kind} for e in entries]
    emit(rows, fmt, payload={"backups": [dict(to_jsonable(e), finished_at=utc_time(e.finished_at))
                                         for e in entries]})


@backup.command("prune", epilog=example(
    "docex-ops backup prune /backups/nightly --keep 7 --dry-run"))
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--keep", required=True, type=click.IntRange(1, None),
              help="Newest good copies to keep per tenant.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
@format_option
def prune_cmd(folder: Path, keep: int, dry_run: bool, fmt: str | None) -> None:
    """Keep the KEEP newest copies per tenant whose archive matches its manifest; remove
    the rest. A tenant with no good copy is never pruned."""
    try:
        result = ops.prune_backups(folder, keep, dry_run)
    except ops.BackupUsageError as exc:
        raise UsageProblem(str(exc)) from exc
    verb = "would remove" if dry_run else "removed"
    rows = [{"action": "keep", "file": str(p), "why": result.why_kept.get(p, "")}
            for p in result.kept]
    rows += [{"action": verb, "file": str(p), "why": f"beyond --keep {keep}"}
             for p in result.removed + result.removed_archives]
    emit(rows, fmt, payload=result, problems=[
        problem_entry("no copy matches its manifest; nothing pruned for it", t)
        for t in result.no_good_copy])
    for tenant_id in result.no_good_copy:
        info(f"tenant {tenant_id}: no copy matches its manifest; nothing pruned for it")
