"""Per-tenant backup, verify and restore, each archive with a manifest beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops import lazy_exports

if TYPE_CHECKING:
    from docex_ops.backup.catalog import BackupEntry, PruneResult, list_backups, prune_backups
    from docex_ops.backup.create import BackupResult, create_backups
    from docex_ops.backup.manifest import BackupUsageError, Manifest, find_manifests, read_manifest
    from docex_ops.backup.restore import RestoreRefused, RestoreResult, restore_backup
    from docex_ops.backup.signing import signing_key
    from docex_ops.backup.verify import VerifyResult, verify_path

__all__ = [
    "BackupEntry", "BackupResult", "BackupUsageError", "Manifest", "PruneResult",
    "RestoreRefused", "RestoreResult", "VerifyResult", "create_backups", "find_manifests",
    "list_backups", "prune_backups", "read_manifest", "restore_backup", "signing_key",
    "verify_path"
]
__getattr__ = lazy_exports(__name__, {
    "BackupEntry": "docex_ops.backup.catalog",
    "BackupResult": "docex_ops.backup.create",
    "BackupUsageError": "docex_ops.backup.manifest",
    "Manifest": "docex_ops.backup.manifest",
    "PruneResult": "docex_ops.backup.catalog",
    "RestoreRefused": "docex_ops.backup.restore",
    "RestoreResult": "docex_ops.backup.restore",
    "VerifyResult": "docex_ops.backup.verify",
    "create_backups": "docex_ops.backup.create",
    "find_manifests": "docex_ops.backup.manifest",
    "list_backups": "docex_ops.backup.catalog",
    "prune_backups": "docex_ops.backup.catalog",
    "read_manifest": "docex_ops.backup.manifest",
    "restore_backup": "docex_ops.backup.restore",
    "signing_key": "docex_ops.backup.signing",
    "verify_path": "docex_ops.backup.verify",
})
