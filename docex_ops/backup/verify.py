"""``backup verify``: archive sha256 against the manifest, optionally a restore check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from docex_ops.backends.archive import TableDigest, TenantArchiver
from docex_ops.backends.archivers import make_archiver
from docex_ops.backup.manifest import BackupUsageError, Manifest, find_manifests, sha256_file
from docex_ops.manager import TenantDatabaseManager


@dataclass
class VerifyResult:
    tenant_id: str
    manifest: Path
    archive: Path
    sha256_ok: bool
    restore_checked: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def compare_digests(expected: dict[str, TableDigest], actual: dict[str, TableDigest]
                    ) -> list[str]:
    """Every table whose count or checksum differs, named, with both values."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want is None:
            problems.append(f"table {table}: present after restore but not in the manifest")
        elif got is None:
            problems.append(f"table {table}: missing after restore")
        elif want.rows != got.rows:
            problems.append(f"table {table}: {got.rows} rows, manifest says {want.rows}")
        elif want.checksum != got.checksum:
            problems.append(f"table {table}: checksum {got.checksum[:12]}... differs from "
                            f"the manifest's {want.checksum[:12]}...")
    return problems


def check_archive(manifest: Manifest, cache: dict[Path, str] | None = None) -> list[str]:
    """Problems with the archive file itself (missing, size, sha256)."""
    archive = manifest.archive_path
    if not archive.is_file():
        return [f"archive {archive} is missing"]
    if archive.stat().st_size != manifest.archive_size:
        return [f"archive {archive} is {archive.stat().st_size} bytes, manifest says "
                f"{manifest.archive_size}"]
    sha = cache.get(archive) if cache is not None else None
    if sha is None:
        sha = sha256_file(archive)
        if cache is not None:
            cache[archive] = sha
    if sha != manifest.archive_sha256:
        return [f"archive {archive} sha256 {sha[:12]}... differs from the manifest's "
                f"{manifest.archive_sha256[:12]}...: the file is damaged or was replaced"]
    return []


def restore_check(archiver: TenantArchiver, manifest: Manifest) -> list[str]:
    """Restore into a scratch place, compare every table with the manifest, remove it."""
    staging = archiver.restore_to_staging(manifest.archive_path, manifest.location, None)
    try:
        return compare_digests(manifest.tables, archiver.digest_staging(staging))
    finally:
        archiver.discard(staging)


def verify_path(path: Path, manager: TenantDatabaseManager | None = None,
                pg_bin: str | None = None) -> list[VerifyResult]:
    """Verify every backup at ``path``; with a manager, also restore-check each one."""
    manifests = find_manifests(path)
    if not manifests:
        raise BackupUsageError(f"no docex-ops backups under {path}")
    archiver = make_archiver(manager.backend, pg_bin) if manager is not None else None
    cache: dict[Path, str] = {}
    results = []
    try:
        for manifest in manifests:
            assert manifest.path is not None
            problems = check_archive(manifest, cache)
            result = VerifyResult(manifest.tenant_id, manifest.path, manifest.archive_path,
                                  not problems, problems=problems)
            if archiver is not None and not problems:
                if manifest.backend != archiver.kind:
                    raise BackupUsageError(
                        f"{manifest.path} is a {manifest.backend} backup; the configured "
                        f"database is {archiver.kind}")
                result.restore_checked = True
                try:
                    result.problems.extend(restore_check(archiver, manifest))
                except RuntimeError as exc:
                    result.problems.append(f"restore failed: {exc}")
            results.append(result)
    finally:
        if archiver is not None:
            archiver.dispose()
    return results
