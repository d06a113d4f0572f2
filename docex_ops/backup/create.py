"""``backup create``: archive tenants with a manifest each. No printing here."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from docex_ops.backends import Backend
from docex_ops.backends.contents import GuardRefusal
from docex_ops.backends.scratch import PARTIAL_SUFFIX, hold_new_file
from docex_ops.backup.archive import DumpResult, TenantArchiver
from docex_ops.backup.archivers import backup_kind, make_archiver
from docex_ops.backup.manifest import (
    ARCHIVE,
    MANIFEST_SUFFIX,
    SAFETY,
    Manifest,
    sha256_file,
    write_manifest,
)
from docex_ops.backup.signing import sign, signing_key
from docex_ops.executor import ProgressFn, ProgressTick
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import validate_all


@dataclass(frozen=True)
class BackupResult:
    tenant_id: str
    archive: Path | None
    manifest: Path | None
    rows: int
    size_bytes: int
    seconds: float
    error: str | None = None
    # A named tenant that does not exist: the command's typo (exit 2), the others go on.
    missing: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@functools.cache
def _docex_ops_version() -> str:
    return version("docex-ops")  # reads package metadata: ~1 ms, once per run not per tenant


def resolve_tenants(manager: TenantDatabaseManager, tenant_ids: list[str] | None,
                    exclude: Sequence[str] = ()) -> list[str]:
    """The ids to back up: the named ones (checked by the tenant rules, before anything
    else happens) or every discovered tenant, less the excluded ones."""
    left_out = set(validate_all(exclude))
    if tenant_ids is None:
        return [t for t in manager.topology.tenant_ids() if t not in left_out]
    ids = [t for t in validate_all(tenant_ids) if t not in left_out]
    for tenant_id in ids:
        manager.backend.location(tenant_id)
    return ids


def create_backups(manager: TenantDatabaseManager, tenant_ids: list[str] | None, dest: Path,
                   jobs: int = 1, pg_bin: str | None = None, batch_size: int | None = None,
                   progress: ProgressFn | None = None,
                   exclude: Sequence[str] = ()) -> list[BackupResult]:
    """Back up tenants (None: all) into ``dest``; a failed tenant never stops the others.
    ``progress`` hears of each tenant, out of the whole selection."""
    ids = resolve_tenants(manager, tenant_ids, exclude)
    total = len(ids)
    unusable = {t: _why_not(manager, t) for t in ids} if tenant_ids else {}
    results = [BackupResult(t, None, None, 0, 0, 0.0, why, missing=why == _missing(manager, t))
               for t, why in unusable.items() if why is not None]

    def tick(result: BackupResult) -> None:
        if progress is not None:
            progress(ProgressTick(done, total, result.tenant_id, result.ok))

    done = 0
    if progress is not None:
        progress(ProgressTick(0, total))
    for result in results:
        done += 1
        tick(result)
    ids = [t for t in ids if unusable.get(t) is None]
    if not ids:
        return results
    dest.mkdir(parents=True, exist_ok=True)
    key = signing_key(manager.settings)  # read once: a bad key fails before any dump
    # One archiver per server: an archive never mixes servers (one pg_dump reads one).
    by_server = manager.by_server(ids)
    archivers = {name: make_archiver(manager.servers[name], pg_bin) for name in by_server}
    # Enough batches to keep every job busy, none above any server's lock budget.
    size = batch_size or min(min(a.batch_size(jobs) for a in archivers.values()),
                             -(-len(ids) // max(1, jobs)))
    work = [(archivers[name], batch) for name, server_ids in by_server.items()
            for batch in archivers[name].batches(server_ids, size)]
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            # Results come back on the caller's thread, so progress may use thread-bound
            # state (the CLI's click context).
            for batch in pool.map(lambda job: _backup_batch(job[0], job[1], dest, key), work):
                results.extend(batch)
                for result in batch:
                    done += 1
                    tick(result)
    finally:
        for archiver in archivers.values():
            archiver.dispose()
    return sorted(results, key=lambda r: r.tenant_id)


def _why_not(manager: TenantDatabaseManager, tenant_id: str) -> str | None:
    """Why a named tenant cannot be backed up (missing, or a link refused), else None."""
    try:
        if manager.topology.exists(tenant_id):
            return None
    except RuntimeError as exc:  # e.g. a linked SQLite tenant: that tenant alone fails
        return str(exc)
    return _missing(manager, tenant_id)


def _missing(manager: TenantDatabaseManager, tenant_id: str) -> str:
    return f"tenant {tenant_id!r} does not exist on {manager.settings.describe()}"


def _backup_batch(archiver: TenantArchiver, batch: list[str], dest: Path,
                  key: bytes | None, kind: str = ARCHIVE) -> list[BackupResult]:
    try:
        return _dump(archiver, batch, dest, key, kind)
    except Exception as exc:  # noqa: BLE001 - reported per tenant, the run goes on
        if len(batch) > 1:
            # One bad tenant must not cost the others their backup, and a batch that
            # failed for want of locks must not turn into one pg_dump per tenant
            # (seconds each on a large catalog): retry in halves.
            half = (len(batch) + 1) // 2
            return [r for part in (batch[:half], batch[half:])
                    for r in _backup_batch(archiver, part, dest, key, kind)]
        who = f"tenant {batch[0]!r}: "
        error = str(exc) if str(exc).startswith(who) else who + str(exc)
        return [BackupResult(batch[0], None, None, 0, 0, 0.0, error)]


def safety_backup(backend: Backend, tenant_id: str, dest: Path, pg_bin: str | None = None,
                  unreadable: bool = False) -> Path:
    """Back up one tenant right before a destructive act, while the act holds it against
    writers; the manifest's path. GuardRefusal if it fails (the act must not go on).
    ``backend``: the server's that holds the tenant.
    ``unreadable``: a SQLite file that is not a database: its bytes are kept instead."""
    dest = dest.resolve()  # the path printed and audited must mean the same from anywhere
    dest.mkdir(parents=True, exist_ok=True)
    archiver = make_archiver(backend, pg_bin)
    archiver.writers_held = True  # the act's own locks: waiting for them would never end
    try:
        (result,) = _backup_batch(archiver, [tenant_id], dest, signing_key(backend.settings),
                                  SAFETY)
    finally:
        archiver.dispose()
    if result.manifest is None:
        kept = backup_kind(backend).keep_bytes(backend, tenant_id, dest) if unreadable else None
        if kept is None:
            raise GuardRefusal(f"tenant {tenant_id!r}: the safety backup into {dest} failed, "
                               f"so nothing was changed: {result.error}")
        return kept
    return result.manifest


def _dump(archiver: TenantArchiver, batch: list[str], dest: Path, key: bytes | None,
          kind: str = ARCHIVE) -> list[BackupResult]:
    started_at, started = _now(), time.perf_counter()
    stamp = _stamp()
    name = (f"{batch[0]}.{stamp}{archiver.extension}" if len(batch) == 1 else
            f"batch-{stamp}-{batch[0]}-{len(batch)}{archiver.extension}")
    archive = dest / name
    # Written under a scratch name, held while pg_dump or SQLite writes it: a killed
    # backup leaves a .partial that `cleanup --backups DEST` finds and removes.
    with hold_new_file(dest, "partial", PARTIAL_SUFFIX) as partial:
        dumped = archiver.dump(batch, partial)
        os.replace(partial, archive)
    return _write_manifests(archiver, dumped, archive, started_at, started, stamp, key, kind)


def _write_manifests(archiver: TenantArchiver, dumped: DumpResult, archive: Path,
                     started_at: str, started: float, stamp: str,
                     key: bytes | None, kind: str = ARCHIVE) -> list[BackupResult]:
    sha, size = sha256_file(archive), archive.stat().st_size
    finished_at = _now()
    seconds = (time.perf_counter() - started) / len(dumped.tenants)
    results = []
    for snap in dumped.tenants:
        manifest = sign(Manifest(
            tenant_id=snap.tenant_id, backend=archiver.kind, location=snap.location,
            revision=snap.revision, tables=snap.tables, archive=archive.name,
            archive_sha256=sha, archive_size=size, tenants_in_archive=len(dumped.tenants),
            server_version=dumped.server_version, tool_version=dumped.tool_version,
            docex_ops_version=_docex_ops_version(), started_at=started_at,
            finished_at=finished_at, kind=kind), key)
        path = write_manifest(manifest, archive.parent /
                              f"{snap.tenant_id}.{stamp}{MANIFEST_SUFFIX}")
        results.append(BackupResult(snap.tenant_id, archive, path, manifest.rows,
                                    size // len(dumped.tenants), seconds))
    return results
