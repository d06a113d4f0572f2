"""``backup list`` and ``backup prune``: what a backup folder holds, and keeping N per tenant."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from docex_ops.backup.manifest import Manifest, find_manifests
from docex_ops.backup.verify import check_archive


@dataclass(frozen=True)
class BackupEntry:
    tenant_id: str
    finished_at: str
    revision: str | None
    rows: int
    archive: Path
    archive_present: bool
    manifest: Path


@dataclass
class PruneResult:
    kept: list[Path] = field(default_factory=list)           # manifests kept
    removed: list[Path] = field(default_factory=list)        # manifests removed
    removed_archives: list[Path] = field(default_factory=list)
    no_good_copy: list[str] = field(default_factory=list)    # tenants left untouched
    dry_run: bool = False


def list_backups(folder: Path) -> list[BackupEntry]:
    return [BackupEntry(m.tenant_id, m.finished_at, m.revision, m.rows, m.archive_path,
                        m.archive_path.is_file(), _path(m))
            for m in find_manifests(folder)]


def prune_backups(folder: Path, keep: int, dry_run: bool = False) -> PruneResult:
    """Per tenant keep the ``keep`` newest copies whose archive checks out against its
    manifest; remove the rest. A tenant without a good copy is left untouched."""
    if keep < 1:
        raise ValueError(f"--keep must be at least 1, got {keep}")
    by_tenant: dict[str, list[Manifest]] = defaultdict(list)
    manifests = find_manifests(folder)
    for manifest in manifests:
        by_tenant[manifest.tenant_id].append(manifest)
    result = PruneResult(dry_run=dry_run)
    cache: dict[Path, str] = {}
    doomed: list[Manifest] = []
    for tenant_id, copies in sorted(by_tenant.items()):
        newest_first = sorted(copies, key=lambda m: m.finished_at, reverse=True)
        good: list[Manifest] = []
        for manifest in newest_first:
            if len(good) == keep:
                break
            if not check_archive(manifest, cache):
                good.append(manifest)
        if not good:
            result.no_good_copy.append(tenant_id)
            result.kept.extend(_path(m) for m in copies)
            continue
        result.kept.extend(_path(m) for m in good)
        kept_paths = {_path(m) for m in good}
        doomed.extend(m for m in newest_first if _path(m) not in kept_paths)
    result.removed = [_path(m) for m in doomed]
    removed = set(result.removed)
    # A batch archive goes only when no kept manifest still points at it.
    still_used = {m.archive_path for m in manifests if _path(m) not in removed}
    result.removed_archives = sorted({m.archive_path for m in doomed} - still_used)
    if not dry_run:
        for path in result.removed:
            path.unlink(missing_ok=True)
        for path in result.removed_archives:
            path.unlink(missing_ok=True)
    return result


def _path(manifest: Manifest) -> Path:
    assert manifest.path is not None
    return manifest.path
