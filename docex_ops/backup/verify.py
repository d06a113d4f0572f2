"""``backup verify``: signature and archive sha256 against the manifest, optionally a
restore check (the same restore as ``backup restore``, into a scratch place)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from docex_ops.backends.base import Backend
from docex_ops.backends.digest import TableDigest
from docex_ops.backup.archive import ArchiveRefused, RestoreSpec, TenantArchiver
from docex_ops.backup.archivers import backup_kind, make_archiver
from docex_ops.backup.manifest import (
    MANIFEST_SUFFIX,
    BackupUsageError,
    Manifest,
    find_manifests,
    read_manifest,
    sha256_file,
)
from docex_ops.backup.signing import signature_problem
from docex_ops.executor import FailurePolicy, ProgressFn, make_executor
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.ddl import revision_ddl


@dataclass
class VerifyResult:
    tenant_id: str
    manifest: Path
    archive: Path
    sha256_ok: bool
    restore_checked: bool = False
    problems: list[str] = field(default_factory=list)
    # True only when a key is configured and the manifest's signature matches it.
    authenticated: bool = False

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


def restore_spec(manifest: Manifest, backend: Backend, key: bytes | None,
                 allow_extra: bool = False) -> RestoreSpec:
    """What a restore of ``manifest`` builds and takes: our DDL for its revision, the
    rows of its archive (and, in a batch archive, which other schemas it may hold)."""
    try:  # where the rows are read from (PostgreSQL: never public, pg_*, or an odd name)
        backup_kind(backend).check_location(manifest.location)
    except ValueError as exc:
        raise ArchiveRefused(f"manifest {manifest.path}: {exc}; refused") from exc
    if manifest.revision is None:
        raise ArchiveRefused(f"manifest {manifest.path} records no revision, so docex-ops "
                             "cannot tell the tenant's structure; adopt the tenant "
                             "(migrate adopt) and back it up again")
    try:
        ddl = revision_ddl(backend.kind, manifest.revision)
    except (LookupError, ValueError) as exc:
        raise ArchiveRefused(f"manifest {manifest.path}: {exc}; restore it with the "
                             "docex-ops that wrote it") from exc
    return RestoreSpec(manifest.archive_path, manifest.location, manifest.revision, ddl,
                       allow_extra, _batch_locations(manifest, backend, key))


def _batch_locations(manifest: Manifest, backend: Backend, key: bytes | None
                     ) -> frozenset[str]:
    """The other tenants' schemas of a batch archive, from the manifests beside it that
    describe the same file (and, with a key, are signed by it)."""
    if manifest.tenants_in_archive <= 1:
        return frozenset()
    found = set()
    for path in sorted(manifest.archive_path.parent.glob("*" + MANIFEST_SUFFIX)):
        try:
            other = read_manifest(path)
        except BackupUsageError:
            continue
        if (other.archive != manifest.archive or other.tenant_id == manifest.tenant_id
                or other.archive_sha256 != manifest.archive_sha256
                or key is not None and signature_problem(other, key) is not None):
            continue
        try:
            expected = backend.location(other.tenant_id)
        except ValueError:
            continue
        if other.location == expected:  # never public, another app's schema, ...
            found.add(other.location)
    return frozenset(found - {manifest.location})


def restore_check(archiver: TenantArchiver, manifest: Manifest, spec: RestoreSpec
                  ) -> list[str]:
    """Restore into a held scratch place, compare every table with the manifest; the
    scratch copy is removed at the end whatever happens."""
    contents = archiver.inspect(spec)
    with archiver.staged(spec, contents, None) as staging:
        return compare_digests(manifest.tables, archiver.digest_staging(staging))


def verify_path(path: Path, manager: TenantDatabaseManager | None = None,
                pg_bin: str | None = None, key: bytes | None = None,
                allow_extra: bool = False, tenants: Collection[str] = (),
                exclude: Collection[str] = (), progress: ProgressFn | None = None,
                jobs: int = 1) -> list[VerifyResult]:
    """Verify every backup at ``path`` (only of ``tenants`` when given, never of
    ``exclude``); with a manager, also restore-check each one. ``progress`` hears of
    each archive (by its tenant). ``jobs`` archives at once, each on its own (its own
    scratch place for the restore check); the results in the order found.

    With ``key``, a manifest whose signature is missing or wrong fails (and is never
    restore-checked); without, every result says it is not authenticated.
    """
    manifests = find_manifests(path)
    if not manifests:
        raise BackupUsageError(f"no docex-ops backups under {path}")
    missing = sorted(set(tenants) - {m.tenant_id for m in manifests})
    if missing:
        raise BackupUsageError(f"no backups of tenant(s) {', '.join(map(repr, missing))} "
                               f"under {path}; `docex-ops backup list {path}` shows them")
    manifests = [m for m in manifests if (not tenants or m.tenant_id in tenants)
                 and m.tenant_id not in exclude]
    archiver = make_archiver(manager.backend, pg_bin) if manager is not None else None
    if archiver is not None:  # refused before any archive is read
        foreign = next((m for m in manifests if m.backend != archiver.kind), None)
        if foreign is not None:
            archiver.dispose()
            raise BackupUsageError(f"{foreign.path} is a {foreign.backend} backup; the "
                                   f"configured database is {archiver.kind}")
    cache: dict[Path, str] = {}  # a batch archive's sha256, once (a race only repeats it)

    def one(manifest: Manifest) -> VerifyResult:
        assert manifest.path is not None
        unsigned = signature_problem(manifest, key) if key is not None else None
        problems = check_archive(manifest, cache)
        result = VerifyResult(manifest.tenant_id, manifest.path, manifest.archive_path,
                              not problems, authenticated=key is not None and not unsigned,
                              problems=([unsigned] if unsigned else []) + problems)
        if archiver is not None and manager is not None and not result.problems:
            result.restore_checked = True
            try:
                spec = restore_spec(manifest, manager.backend, key, allow_extra)
                result.problems.extend(restore_check(archiver, manifest, spec))
            except RuntimeError as exc:
                result.problems.append(f"restore failed: {exc}")
        return result

    try:
        policy = FailurePolicy(continue_on_error=True)
        return make_executor(one, jobs, policy, progress).run(manifests)
    finally:
        if archiver is not None:
            archiver.dispose()
