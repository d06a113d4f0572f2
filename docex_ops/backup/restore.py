"""``backup restore``: a tenant back from its archive, under its own id or another.

The manifest's signature is checked (with a key configured) and the
archive's table of contents before anything is made; the copy is built in a
held scratch schema or file from docex-ops' own DDL for the manifest's
revision, filled with the archive's rows only, and compared with the
manifest there; only a verified copy replaces the target, in one atomic
step, so a failed restore leaves the target exactly as it was.

The target is checked twice: when the restore starts (to refuse early, before
minutes of work) and again inside the transaction that swaps the copy in, with
the target locked against writers (guards.ActGuard): a tenant provisioned and
written while the restore ran is refused there, or with --force backed up there,
under that lock, then replaced, so the backup holds every row the swap removes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from docex_ops import audit_trail
from docex_ops.backends.base import TenantLockedError
from docex_ops.backends.contents import GuardRefusal, TenantContents
from docex_ops.backends.guards import ActGuard, act_with_retries
from docex_ops.backup.archive import (
    ArchiveContents,
    ArchiveRefused,
    RestoreSpec,
    Staging,
    TenantArchiver,
)
from docex_ops.backup.archivers import make_archiver
from docex_ops.backup.create import safety_backup
from docex_ops.backup.manifest import (
    BackupUsageError,
    Manifest,
    safety_folder,
    select_manifest,
)
from docex_ops.backup.signing import signature_problem, signing_key
from docex_ops.backup.verify import check_archive, compare_digests, restore_spec
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import upgrade_tenants
from docex_ops.tenancy import validate_tenant_id


class RestoreRefused(GuardRefusal):
    """The restore would overwrite data the operator did not agree to lose."""


class ReplaceGuard(ActGuard):
    """The restore's guard: replacing ANY existing tenant needs --force, an empty one
    included (pg_restore refuses an existing schema too); one holding rows is backed up
    first, as every destructive act's guard does."""

    def check(self, contents: TenantContents) -> bool:
        needs_backup = super().check(contents)  # foreign, dependents, rows: refused first
        if not self.force:
            raise RestoreRefused(f"tenant {self.tenant_id!r} exists ({contents.location}, "
                                 f"empty); the restore would replace it: {self.hint}")
        return needs_backup


@dataclass(frozen=True)
class RestoreResult:
    tenant_id: str
    source_tenant_id: str
    archive: Path
    location: str
    revision: str | None
    rows: int
    replaced_existing: bool
    safety_backup: Path | None
    upgraded_to: str | None
    seconds: float
    authenticated: bool = False   # the manifest's signature matched the configured key


def restore_backup(manager: TenantDatabaseManager, path: Path, as_tenant: str | None = None,
                   from_tenant: str | None = None, force: bool = False, upgrade: bool = False,
                   safety_dir: Path | None = None, pg_bin: str | None = None,
                   allow_extra: bool = False,
                   note: Callable[[str], None] | None = None) -> RestoreResult:
    """Restore one tenant's backup; the target is the manifest's tenant unless ``as_tenant``.

    ``allow_extra``: also the tenant's own tables DocEX does not have (created by a
    restricted role). ``note`` hears what the caller should tell the operator before the
    restore goes on (an unauthenticated manifest).
    """
    started = time.perf_counter()
    if as_tenant is not None:  # hostile ids are refused before anything is read or created
        validate_tenant_id(as_tenant)
        manager.backend.location(as_tenant)
    manifest = select_manifest(path, from_tenant)
    target = as_tenant if as_tenant is not None else manifest.tenant_id
    location = manager.backend.location(target)
    if manifest.backend != manager.backend.kind:
        raise BackupUsageError(f"{manifest.path} is a {manifest.backend} backup; the configured "
                               f"database is {manager.backend.kind}")
    key = signing_key(manager.settings)
    detail = {"archive": str(manifest.archive_path), "from_tenant": manifest.tenant_id,
              "revision": manifest.revision, "authenticated": key is not None}
    unsigned = signature_problem(manifest, key) if key is not None else None
    if unsigned:
        audit_trail.record("tenant.restore", target, location, audit_trail.REFUSED,
                     {**detail, "error": unsigned})
        raise RestoreRefused(unsigned)
    if key is None and note is not None:
        note(f"manifest {manifest.path} is unauthenticated (no backup.signing_key_file is "
             "configured): anyone who can write to the backup folder could have changed it; "
             "restoring anyway")
    problems = check_archive(manifest)
    if problems:
        raise RuntimeError(f"tenant {target!r}: not restoring: {'; '.join(problems)}")
    topology = manager.topology
    archiver: TenantArchiver | None = None
    dest = safety_dir or safety_folder(manifest.archive_path.parent)
    guard = ReplaceGuard(target, "the restore", force,
                     backup=lambda raw: safety_backup(topology.holder_of(target), target, dest,
                                                      pg_bin, raw),
                     hint="rerun with --force (docex-ops backs the tenant up first), or "
                          "restore under another id with --as NEW_ID")
    try:
        server = topology.destination(target)  # several servers: its own, or the emptiest
        archiver = make_archiver(manager.servers[server], pg_bin)
        spec = restore_spec(manifest, manager.backend, key, allow_extra)
        # The table of contents before the guard: a hostile archive costs no safety backup.
        contents = archiver.inspect(spec)
        _guard_existing(manager, guard, target)
        # The per-server job limit (set_server_jobs); on Citus the tenant's worker node's.
        with topology.slot_on(topology.job_place(target, server)):
            _restore_verified(archiver, manifest, spec, contents, target, guard,
                              lambda: topology.placing(target, server))
        manager.close_tenant_connection(target)  # pools must not keep the replaced tenant
    except (GuardRefusal, TenantLockedError, ArchiveRefused) as exc:
        audit_trail.record("tenant.restore", target, location, audit_trail.REFUSED, {**detail,
                                                                         "error": str(exc)})
        raise
    except Exception as exc:
        audit_trail.record("tenant.restore", target, location, audit_trail.FAILED, {**detail,
                                                                        "error": str(exc)})
        raise
    finally:
        if archiver is not None:
            archiver.dispose()
    existing, safety = guard.seen is not None, guard.safety_backup
    audit_trail.record("tenant.restore", target, location, audit_trail.OK,
                 {**detail, "replaced_existing": existing,
                  "replaced_rows": guard.seen.total_rows if guard.seen is not None else 0,
                  "safety_backup": str(safety) if safety else None})
    upgraded_to = None
    if upgrade:  # a backup taken at an older revision comes back at head
        upgrade_tenants(manager, [target])  # outside the slot: it takes one itself
        upgraded_to = topology.read_revisions([target]).get(target)
    return RestoreResult(target, manifest.tenant_id, manifest.archive_path, location,
                         manifest.revision, manifest.rows, existing, safety, upgraded_to,
                         time.perf_counter() - started, key is not None)


def _guard_existing(manager: TenantDatabaseManager, guard: ActGuard, target: str) -> None:
    """Refuse early what the swap would refuse (rows in any table without --force, a
    dependent outside, a foreign schema); the swap checks again under its lock."""
    contents = manager.topology.read_contents(target)
    if contents is not None:
        guard.check(contents)


def _promote(archiver: TenantArchiver, staging: Staging, target: str, guard: ActGuard,
             placing: Callable[[], AbstractContextManager[None]]) -> None:
    with placing():  # several servers: the place is recorded, then marked active
        archiver.promote(staging, target, guard)


def _restore_verified(archiver: TenantArchiver, manifest: Manifest, spec: RestoreSpec,
                      contents: ArchiveContents, target: str, guard: ActGuard,
                      placing: Callable[[], AbstractContextManager[None]]) -> None:
    # The scratch copy is held until the block ends, and removed then unless promoted.
    with archiver.staged(spec, contents, target) as staging:
        problems = compare_digests(manifest.tables, archiver.digest_staging(staging))
        if problems:
            raise RuntimeError(f"tenant {target!r}: the restored copy differs from the "
                               f"manifest, so it was removed and the tenant left as it was: "
                               f"{'; '.join(problems)}")
        act_with_retries(lambda: _promote(archiver, staging, target, guard, placing))
