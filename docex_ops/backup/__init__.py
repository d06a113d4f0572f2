"""Per-tenant backup, verify and restore, each archive with a manifest beside it."""

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
    "verify_path",
]
