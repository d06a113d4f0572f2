"""``backup list`` and ``backup prune``: what a backup folder holds, and keeping N per tenant.

Archives (backups an operator took) and safety copies (taken by a destructive act
before it acted) are told apart (``Manifest.kind``) and pruned each on their own: a
newer safety copy never pushes a tenant's newest verified archive out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from docex_ops.backup.manifest import ARCHIVE, SAFETY, Manifest, find_manifests, safety_folder
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
    kind: str = ARCHIVE  # archive | safety


@dataclass
class PruneResult:
    kept: list[Path] = field(default_factory=list)           # manifests kept
    why_kept: dict[Path, str] = field(default_factory=dict)  # manifest -> why it stays
    removed: list[Path] = field(default_factory=list)        # manifests removed
    removed_archives: list[Path] = field(default_factory=list)
    no_good_copy: list[str] = field(default_factory=list)    # tenants left untouched
    dry_run: bool = False


def list_backups(folder: Path) -> list[BackupEntry]:
    """Every copy under ``folder`` and in its safety folder beside it (``<folder>.safety``,
    where restores put theirs by default), each marked archive or safety."""
    manifests = find_manifests(folder)
    beside = safety_folder(folder)
    if beside.is_dir():
        manifests += find_manifests(beside)
    return [BackupEntry(m.tenant_id, m.finished_at, m.revision, m.rows, m.archive_path,
                        m.archive_path.is_file(), _path(m), _kind(m))
            for m in sorted(manifests, key=lambda m: (m.tenant_id, m.finished_at))]


def prune_backups(folder: Path, keep: int, dry_run: bool = False) -> PruneResult:
    """Per tenant, and separately for its archives and its safety copies, keep the
    ``keep`` newest copies whose archive checks out against its manifest; remove the
    rest. So a tenant's newest verified archive is always kept; a tenant (or kind)
    without a verified copy is left untouched. ``why_kept`` says why each copy stays."""
    if keep < 1:
        raise ValueError(f"--keep must be at least 1, got {keep}")
    groups: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
    manifests = find_manifests(folder)
    for manifest in manifests:
        groups[(manifest.tenant_id, _kind(manifest))].append(manifest)
    result = PruneResult(dry_run=dry_run)
    cache: dict[Path, str] = {}
    doomed: list[Manifest] = []
    for (tenant_id, kind), copies in sorted(groups.items()):
        newest_first = sorted(copies, key=lambda m: m.finished_at, reverse=True)
        good: list[Manifest] = []
        for manifest in newest_first:
            if len(good) == keep:
                break
            if not check_archive(manifest, cache):
                good.append(manifest)
        if not good:
            if kind == ARCHIVE:
                result.no_good_copy.append(tenant_id)
            for m in copies:
                result.kept.append(_path(m))
                result.why_kept[_path(m)] = f"no {kind} copy of {tenant_id} verifies: " \
                                            "none of them is pruned"
            continue
        for rank, m in enumerate(good, 1):
            result.kept.append(_path(m))
            result.why_kept[_path(m)] = _why(kind, rank, keep)
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


def _why(kind: str, rank: int, keep: int) -> str:
    what = "archive" if kind == ARCHIVE else "safety copy"
    if rank == 1:
        return f"the newest verified {what}" + (" (always kept)" if kind == ARCHIVE else "")
    return f"verified {what} {rank} of the {keep} newest kept"


def _kind(manifest: Manifest) -> str:
    return SAFETY if manifest.is_safety else ARCHIVE


def _path(manifest: Manifest) -> Path:
    assert manifest.path is not None
    return manifest.path
