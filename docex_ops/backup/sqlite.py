"""SQLite archives: a copy made with SQLite's online backup API, never a file copy.

``sqlite3.Connection.backup`` copies a consistent snapshot while DocEX keeps
writing (the copy restarts by itself if the source changes mid-way; done in
one step it holds a read lock instead). The checksums are computed on the
finished copy, so the manifest describes exactly what the archive holds.
Restoring checks the archive's ``sqlite_master``, builds a held scratch file
beside the tenant's file from docex-ops' own DDL and copies only the rows into
it (sqlite_staging), verifies it, then renames it into place (atomic). SQLite
reads the archive only through an fd opened without following links and
checked not to be a live tenant's file (``plain_archive``).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import replace
from pathlib import Path

from docex_ops.backends import scratch
from docex_ops.backends.contents import Guard, refuse_rows
from docex_ops.backends.digest import TableDigest
from docex_ops.backends.pg_tools import ArchiveToolError
from docex_ops.backends.sqlite import (
    DEFAULT_TIMEOUT,
    FILE_MODE,
    SIDECARS,
    SqliteBackend,
    open_readonly,
)
from docex_ops.backends.sqlite_digest import digest_database
from docex_ops.backends.sqlite_guard import copy_bytes, file_contents
from docex_ops.backends.sqlite_paths import TenantPaths
from docex_ops.backup.archive import (
    ArchiveContents,
    DumpResult,
    RestoreSpec,
    Staging,
    TenantArchiver,
    TenantSnapshot,
)
from docex_ops.backup.archivers import BackupKind
from docex_ops.backup.sqlite_staging import build_file, inspect_file


def backup_file(source: Path, target: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Copy the database at ``source`` (opened read-only as a plain path) to ``target``
    with the online backup API."""
    with closing(open_readonly(source, timeout)) as src, \
            closing(sqlite3.connect(target)) as dst:
        copy_locked(src, dst)
    os.chmod(target, FILE_MODE)


def copy_locked(src: sqlite3.Connection, dst: sqlite3.Connection) -> None:
    """The online backup, under a read lock taken first: the backup API itself retries a
    busy source forever; a read transaction waits the busy timeout, then raises."""
    src.execute("BEGIN")
    try:
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        src.backup(dst)  # pages=-1: one step under the read lock, a consistent snapshot
    finally:
        src.execute("ROLLBACK")


@contextmanager
def plain_archive(spec: RestoreSpec, paths: TenantPaths) -> Iterator[RestoreSpec]:
    """``spec`` with its archive reached through one fd opened without following links,
    refused if it is a live tenant's file (a link or a hard link planted in the backup
    folder) or anything under the storage root: what was checked is what SQLite reads
    (``/proc/self/fd/N`` reopens that very file)."""
    archive = spec.archive
    try:
        fd = os.open(archive, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ArchiveToolError(f"archive {archive} cannot be opened as a plain file "
                               f"({exc.strerror}); a link is never followed") from exc
    try:
        st = os.fstat(fd)
        owner = paths.owner_of_inode(st)
        if not stat.S_ISREG(st.st_mode) or owner is not None or \
                paths.root in Path(os.path.realpath(archive)).parents:
            raise ArchiveToolError(
                f"archive {archive} is not a plain archive file: it is "
                + (f"tenant {owner!r}'s live database" if owner else
                   "a file under the storage root" if stat.S_ISREG(st.st_mode) else
                   "not a regular file") + "; refusing to restore from it")
        yield replace(spec, archive=Path(f"/proc/self/fd/{fd}"))
    finally:
        os.close(fd)


def archive_file(src: sqlite3.Connection, target: Path
                 ) -> tuple[dict[str, TableDigest], str | None]:
    """Write a new archive of the open (checked, read-only) tenant file ``src`` at
    ``target`` with the online backup API and digest it on the same connection: the
    manifest describes exactly the copy.

    ``target`` is a fresh file that becomes an archive only once its manifest is
    written, so it needs no rollback journal and no fsync per page; it is synced
    once, whole, before the manifest names it: a restore --force drops a tenant
    right after its safety backup, which must therefore be on disk.
    """
    with closing(sqlite3.connect(target, isolation_level=None)) as dst:
        dst.execute("PRAGMA journal_mode = OFF")
        dst.execute("PRAGMA synchronous = OFF")
        copy_locked(src, dst)
        os.chmod(target, FILE_MODE)
        digests = digest_database(dst)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return digests


def digest_file(path: Path) -> tuple[dict[str, TableDigest], str | None]:
    """Every DocEX table's digest and the recorded revision, in one read transaction."""
    with closing(open_readonly(path)) as conn:
        return digest_database(conn)


class SqliteArchiver(TenantArchiver):
    kind = "sqlite"
    extension = ".sqlite"

    def __init__(self, backend: SqliteBackend, pg_bin: str | None = None) -> None:
        self.backend = backend  # pg_bin: PostgreSQL's tools, not used here

    def batch_size(self, jobs: int) -> int:
        return 1

    def dump(self, tenant_ids: list[str], archive: Path) -> DumpResult:
        (tenant_id,) = tenant_ids
        checked = self.backend.paths.check(tenant_id)  # refuses a linked tenant
        source = checked.path
        if checked.identity is None:
            raise ArchiveToolError(f"tenant {tenant_id!r}: file {source} does not exist")
        try:
            with closing(self.backend.open_tenant(tenant_id, readonly=True,
                                                  checked=checked)) as src:
                tables, revision = archive_file(src, archive)
        except sqlite3.Error as exc:  # locked past the lock timeout, or not a database
            raise ArchiveToolError(self.backend.unreadable(tenant_id, exc)[1]) from exc
        snapshot = TenantSnapshot(tenant_id, str(source), revision, tables)
        return DumpResult(archive, [snapshot], f"sqlite3 {sqlite3.sqlite_version}",
                          f"sqlite {sqlite3.sqlite_version}")

    def digest_tenant(self, tenant_id: str) -> dict[str, TableDigest]:
        with closing(self.backend.open_tenant(tenant_id, readonly=True)) as conn:
            return digest_database(conn)[0]

    def inspect(self, spec: RestoreSpec) -> ArchiveContents:
        with plain_archive(spec, self.backend.paths) as plain:
            return inspect_file(plain)

    @contextmanager
    def staged(self, spec: RestoreSpec, contents: ArchiveContents,
               target_tenant_id: str | None) -> Iterator[Staging]:
        with ExitStack() as stack:
            if target_tenant_id is None:  # a restore check: under the storage root, held
                root = self.backend.storage_root.resolve()
                root.mkdir(mode=0o750, parents=True, exist_ok=True)
                folder = stack.enter_context(scratch.hold_new_folder(root, "verify"))
            else:
                target = self.backend.path(target_tenant_id)
                with self.backend.paths.parent_dir(target, create=True):  # never via a link
                    folder = target.parent
            path = stack.enter_context(scratch.hold_new_file(folder.resolve(), "restore",
                                                             ".db"))
            plain = stack.enter_context(plain_archive(spec, self.backend.paths))
            try:
                build_file(path, plain, contents)
            except sqlite3.DatabaseError as exc:
                raise ArchiveToolError(f"archive {spec.archive} could not be restored: "
                                       f"{exc}") from exc
            os.chmod(path, FILE_MODE)
            yield Staging(str(path))

    def digest_staging(self, staging: Staging) -> dict[str, TableDigest]:
        return digest_file(Path(staging.location))[0]

    def staging_revision(self, staging: Staging) -> str | None:
        return digest_file(Path(staging.location))[1]

    def promote(self, staging: Staging, tenant_id: str, guard: Guard | None = None) -> None:
        """Put the verified copy in place. A tenant file that exists at this moment (it
        may have been provisioned and written since the restore began) is held against
        writers, shown to ``guard``, and replaced while still held. Everything happens
        in the tenant's directory, reached without links; the copy is staged there."""
        checked = self.backend.paths.check(tenant_id)
        name = Path(staging.location).name
        with self.backend.paths.parent_dir(checked.path) as folder:
            if checked.identity is None:
                try:  # a hard link never replaces a file that appeared meanwhile
                    os.link(name, checked.path.name, src_dir_fd=folder, dst_dir_fd=folder,
                            follow_symlinks=False)
                except FileExistsError:
                    checked = self.backend.paths.check(tenant_id)  # held and checked below
                else:
                    os.unlink(name, dir_fd=folder)
                    return
            with self.backend.held_file(tenant_id, checked) as conn:
                assert conn is not None
                (guard or refuse_rows)(file_contents(conn, str(checked.path)))
                for suffix in SIDECARS:  # a stale journal or WAL must not be replayed
                    with suppress(FileNotFoundError):
                        os.unlink(checked.path.name + suffix, dir_fd=folder)
                os.replace(name, checked.path.name, src_dir_fd=folder, dst_dir_fd=folder)

    def discard(self, staging: Staging) -> None:
        path = Path(staging.location)
        if not scratch.is_scratch_file(path.name):  # never a tenant's file
            raise ValueError(f"refusing to delete {path}: not a staging file")
        for suffix in ("", *SIDECARS):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def keep_bytes(backend: SqliteBackend, tenant_id: str, dest: Path) -> Path | None:
    """A byte copy of a file SQLite cannot read, into ``dest`` (the safety backup of a
    forced drop: the backup API cannot read it either)."""
    checked = backend.paths.check(tenant_id)
    if checked.identity is None:
        return None
    with backend.paths.parent_dir(checked.path) as folder:
        return copy_bytes(folder, checked.path.name, dest, tenant_id)


KIND = BackupKind(SqliteArchiver, keep_bytes=keep_bytes)
