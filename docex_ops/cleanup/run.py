"""``docex-ops cleanup``: remove the scratch objects interrupted operations left behind.

A scratch object (``docex_ops.backends.scratch``: restore copies and checks, split
snapshots, reference tenants, partial archives and manifests) lives under a
name no tenant can have and is held by the operation that made it. One nobody
holds was left by a process that died: it is removed, one audit line each.
One that is held belongs to a running operation and is kept, and said so.
Searched: every configured server or the storage root, the temp folder (split
snapshots of a SQLite source and restore checks live there), and the backup
folders given. No printing here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from docex_ops import audit_trail
from docex_ops.backends import leftovers, scratch
from docex_ops.backends.scratch import Leftover
from docex_ops.manager.tenant_manager import TenantDatabaseManager

REMOVED, WOULD_REMOVE, KEPT, FAILED = "removed", "would remove", "kept: held", "failed"
# Deep enough for dated backup layouts (dest/2026/03/01/...), bounded all the same.
BACKUP_DEPTH = 8


@dataclass(frozen=True)
class CleanupItem:
    leftover: Leftover
    action: str          # removed | would remove | kept: held | failed
    error: str | None = None


@dataclass
class CleanupReport:
    dry_run: bool
    items: list[CleanupItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(i.action != FAILED for i in self.items)

    def count(self, action: str) -> int:
        return sum(i.action == action for i in self.items)


def find_leftovers(manager: TenantDatabaseManager, backup_dirs: Iterable[Path] = (),
                   temp: bool = True) -> list[Leftover]:
    """Every scratch object: the deployment's, the temp folder's (``temp``) and those
    in ``backup_dirs``; each once."""
    found = leftovers.find(manager.servers)
    if temp:
        found += scratch.find_files(Path(tempfile.gettempdir()))
    for folder in backup_dirs:
        found += scratch.find_files(folder, BACKUP_DEPTH, backups=True)
    unique = {(item.kind, item.name, item.where): item for item in found}
    return sorted(unique.values(), key=lambda i: (i.where, i.kind, i.name))


def cleanup(manager: TenantDatabaseManager, backup_dirs: Iterable[Path] = (),
            dry_run: bool = False) -> CleanupReport:
    """Remove every leftover nobody holds (``dry_run``: only say so)."""
    report = CleanupReport(dry_run)
    for item in find_leftovers(manager, backup_dirs):
        if item.held:
            report.items.append(CleanupItem(item, KEPT))
        elif dry_run:
            report.items.append(CleanupItem(item, WOULD_REMOVE))
        else:
            report.items.append(_remove(manager, item))
    return report


def _remove(manager: TenantDatabaseManager, item: Leftover) -> CleanupItem:
    detail = {"kind": item.kind, "where": item.where, "purpose": item.purpose}
    try:
        removed = leftovers.remove(manager.servers, item)
    except Exception as exc:  # noqa: BLE001 - reported per object, the others go on
        error = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        audit_trail.record("scratch.remove", None, item.name, audit_trail.FAILED,
                           {**detail, "error": error})
        return CleanupItem(item, FAILED, error)
    if not removed:  # taken by an operation that started meanwhile
        return CleanupItem(item, KEPT)
    audit_trail.record("scratch.remove", None, item.name, audit_trail.OK, detail)
    return CleanupItem(item, REMOVED)
