"""``backup restore``: a tenant back from its archive, under its own id or another.

The manifest's signature is checked (with a key configured) and the
archive's table of contents before anything is made; the copy is built in a
held scratch schema or file from docex-ops' own DDL for the manifest's
revision, filled with the archive's rows only, and compared with the
manifest there; only a verified copy replaces the target, in one atomic
step, so a failed restore leaves the target exactly as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docex_ops import audit
from docex_ops.backends.archive import (
    ArchiveContents,
    ArchiveRefused,
    RestoreSpec,
    TenantArchiver,
)
from docex_ops.backends.archivers import make_archiver
from docex_ops.backup.create import create_backups
from docex_ops.backup.manifest import BackupUsageError, Manifest, select_manifest
from docex_ops.backup.signing import signature_problem, signing_key
from docex_ops.backup.verify import check_archive, compare_digests, restore_spec
from docex_ops.manager import TenantDatabaseManager
from docex_ops.migrate import upgrade_tenants
from docex_ops.tenancy import validate_tenant_id


class RestoreRefused(RuntimeError):
    """The restore would overwrite data the operator did not agree to lose."""


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
        audit.record("tenant.restore", target, location, audit.REFUSED,
                     {**detail, "error": unsigned})
        raise RestoreRefused(unsigned)
    if key is None and note is not None:
        note(f"manifest {manifest.path} is unauthenticated (no backup.signing_key_file is "
             "configured): anyone who can write to the backup folder could have changed it; "
             "restoring anyway")
    problems = check_archive(manifest)
    if problems:
        raise RuntimeError(f"tenant {target!r}: not restoring: {'; '.join(problems)}")
    archiver = make_archiver(manager.backend, pg_bin)
    try:
        spec = restore_spec(manifest, manager.backend, key, allow_extra)
        # The table of contents before the guard: a hostile archive costs no safety backup.
        contents = archiver.inspect(spec)
        existing, safety = _guard_existing(manager, archiver, manifest, target, force,
                                           safety_dir, pg_bin)
        _restore_verified(archiver, manifest, spec, contents, target)
        manager.close_tenant_connection(target)  # pools must not keep the replaced tenant
    except (RestoreRefused, ArchiveRefused) as exc:
        audit.record("tenant.restore", target, location, audit.REFUSED, {**detail,
                                                                         "error": str(exc)})
        raise
    except Exception as exc:
        audit.record("tenant.restore", target, location, audit.FAILED, {**detail,
                                                                        "error": str(exc)})
        raise
    finally:
        archiver.dispose()
    audit.record("tenant.restore", target, location, audit.OK,
                 {**detail, "replaced_existing": existing,
                  "safety_backup": str(safety) if safety else None})
    upgraded_to = None
    if upgrade:  # a backup taken at an older revision comes back at head
        upgrade_tenants(manager.backend, [target])
        upgraded_to = manager.backend.read_revisions([target]).get(target)
    return RestoreResult(target, manifest.tenant_id, manifest.archive_path, location,
                         manifest.revision, manifest.rows, existing, safety, upgraded_to,
                         time.perf_counter() - started, key is not None)


def _guard_existing(manager: TenantDatabaseManager, archiver: TenantArchiver,
                    manifest: Manifest, target: str, force: bool, safety_dir: Path | None,
                    pg_bin: str | None) -> tuple[bool, Path | None]:
    """Refuse to overwrite a tenant holding rows unless forced; then back it up first."""
    if not manager.backend.exists(target):
        return False, None
    rows = sum(d.rows for d in archiver.digest_tenant(target).values())
    if rows == 0:
        return True, None
    if not force:
        raise RestoreRefused(
            f"tenant {target!r} exists and holds {rows} rows; restoring would replace them. "
            "Rerun with --force (docex-ops backs the tenant up first), or restore under "
            "another id with --as NEW_ID")
    dest = safety_dir or manifest.archive_path.parent / "pre-restore"
    (result,) = create_backups(manager, [target], dest, pg_bin=pg_bin, batch_size=1)
    if not result.ok:
        raise RestoreRefused(f"tenant {target!r}: the safety backup before replacing it "
                             f"failed, nothing was restored: {result.error}")
    return True, result.manifest


def _restore_verified(archiver: TenantArchiver, manifest: Manifest, spec: RestoreSpec,
                      contents: ArchiveContents, target: str) -> None:
    # The scratch copy is held until the block ends, and removed then unless promoted.
    with archiver.staged(spec, contents, target) as staging:
        problems = compare_digests(manifest.tables, archiver.digest_staging(staging))
        if problems:
            raise RuntimeError(f"tenant {target!r}: the restored copy differs from the "
                               f"manifest, so it was removed and the tenant left as it was: "
                               f"{'; '.join(problems)}")
        archiver.promote(staging, target)
