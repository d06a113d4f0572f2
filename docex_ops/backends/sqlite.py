"""SQLite: one database file per tenant, under the storage root."""

from __future__ import annotations

import functools
import glob
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from docex_ops.backends.base import (
    FOREIGN,
    LINKED,
    LOCKED,
    Backend,
    TenantInfo,
    TenantLockedError,
)
from docex_ops.backends.catalog import Catalog, sqlite_catalog
from docex_ops.backends.contents import (
    Guard,
    TenantContents,
    UnreadableFileError,
    describe_foreign,
    foreign_tables,
    refuse_rows,
    refuse_to_provision_foreign,
)
from docex_ops.backends.sqlite_connect import (
    DEFAULT_TIMEOUT,
    DIR_MODE,
    FILE_MODE,
    SIDECARS,
    FileRouter,
    OpenTarget,
    cached_statements,
    condition_of,
    file_uri,
    open_readonly,
    readonly_uri,
    split_statements,
    sqlite_engine,
)
from docex_ops.backends.sqlite_guard import file_contents, refusal, write_locked
from docex_ops.backends.sqlite_paths import CheckedFile, TenantFileError, TenantPaths
from docex_ops.config.settings import PoolSettings, Settings
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.tenancy import CONTROL_SQLITE_FILE, tenant_id_pattern

__all__ = ["DEFAULT_TIMEOUT", "DIR_MODE", "FILE_MODE", "SIDECARS", "SqliteBackend", "file_uri",
           "open_readonly", "readonly_uri", "split_statements"]


class SqliteBackend(Backend):
    kind = "sqlite"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.storage_root = settings.sqlite.storage_root
        self.paths = TenantPaths(settings.sqlite.path_template, self.storage_root)
        self._pattern = tenant_id_pattern(self.paths.template)
        self.timeout = settings.lock_timeout  # SQLite's busy timeout, for every open
        self._router = FileRouter()

    def location(self, tenant_id: str) -> str:
        return str(self.paths.lexical(tenant_id))

    def path(self, tenant_id: str) -> Path:
        """The tenant's file, checked to be its own (TenantFileError before any open)."""
        return self.paths.check(tenant_id).path

    def open_tenant(self, tenant_id: str, readonly: bool = False,
                    checked: CheckedFile | None = None, create: bool = False,
                    timeout: float | None = None) -> sqlite3.Connection:
        """A connection (autocommit, any thread) on the tenant's checked file; it never
        creates the file unless ``create``; raises if the file is not the tenant's."""
        target = self._target(tenant_id, readonly, checked, create, timeout)
        conn = sqlite3.connect(target.uri, uri=True, timeout=target.timeout,
                               isolation_level=None, check_same_thread=False)
        try:
            target.verify(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _target(self, tenant_id: str, readonly: bool = False,
                checked: CheckedFile | None = None, create: bool = False,
                timeout: float | None = None) -> OpenTarget:
        checked = checked or self.paths.check(tenant_id)
        mode = "ro" if readonly else ("rwc" if create else "rw")
        return OpenTarget(file_uri(checked.path, mode), self.timeout if timeout is None
                          else timeout, functools.partial(self.paths.verify_open,
                                                          checked=checked))

    def _tenant_files(self) -> Iterator[tuple[str, str]]:
        """(tenant id, file path) of every tenant file, sorted by path (links included:
        the check names them)."""
        for path_text in sorted(glob.glob(glob.escape(self.paths.template).replace(
                glob.escape("{tenant_id}"), "*"))):
            match = self._pattern.fullmatch(path_text)
            if match and os.path.lexists(path_text) and not os.path.isdir(path_text):
                yield match["tenant_id"], path_text

    def tenant_ids(self) -> list[str]:
        # The file names suffice: opening thousands of files is what discover() pays for.
        return sorted(tenant_id for tenant_id, _ in self._tenant_files())

    def discover(self, with_size: bool = False) -> list[TenantInfo]:
        found = []
        for tenant_id, path_text in self._tenant_files():
            condition = detail = None
            tables, revision = 0, None
            try:
                with closing(self.open_tenant(tenant_id, readonly=True)) as conn:
                    tables, revision, foreign = _inspect(conn)
                if foreign is not None:
                    condition, detail = FOREIGN, describe_foreign(path_text, foreign)
            except TenantFileError as exc:  # listed, never opened: the detail names both
                condition, detail = LINKED, str(exc)
            except sqlite3.Error as exc:
                condition, detail = self.unreadable(tenant_id, exc)
            size = _file_size(Path(path_text)) if with_size and condition != LINKED else None
            found.append(TenantInfo(tenant_id, path_text, tables, revision, size,
                                    condition=condition, detail=detail))
        return found

    def unreadable(self, tenant_id: str, exc: sqlite3.Error) -> tuple[str, str]:
        """(LOCKED or CORRUPT, one line naming the tenant, its file and the cause)."""
        condition = condition_of(exc)
        where = f"tenant {tenant_id!r}: {self.location(tenant_id)}"
        if condition == LOCKED:
            return condition, (f"{where} is locked by another connection (waited "
                               f"{self.timeout:g}s, the lock timeout): {exc}")
        return condition, f"{where} is not a valid SQLite database (corrupt): {exc}"

    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        result: dict[str, str | None] = {}
        for tenant_id in tenant_ids:
            checked = self.paths.check(tenant_id)
            if checked.identity is None:
                result[tenant_id] = None
                continue
            with closing(self.open_tenant(tenant_id, readonly=True, checked=checked)) as conn:
                result[tenant_id] = _inspect(conn)[1]
        return result

    def exists(self, tenant_id: str) -> bool:
        return self.paths.check(tenant_id).identity is not None

    def create(self, tenant_id: str, ddl: str) -> bool:
        checked = self.paths.check(tenant_id)  # a link is refused before anything is made
        claimed = None
        if checked.identity is None:
            self.paths.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            with self.paths.parent_dir(checked.path, create=True, mode=DIR_MODE) as folder:
                try:  # claim the file: exactly one creator makes it, with our permissions
                    fd = os.open(checked.path.name, os.O_CREAT | os.O_EXCL | os.O_WRONLY |
                                 os.O_NOFOLLOW, FILE_MODE, dir_fd=folder)
                    claimed = os.fstat(fd)
                    os.close(fd)
                except FileExistsError:
                    pass
            checked = self.paths.check(tenant_id)
        try:
            with closing(self.open_tenant(tenant_id, checked=checked)) as conn:
                # The write lock first, then the check: a concurrent creator waits
                # here and then finds the tables; an empty file (ours, or left by a
                # crash) is filled, as an empty PostgreSQL schema is.
                conn.execute("BEGIN IMMEDIATE")
                tables = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'")]
                if tables or conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    conn.execute("ROLLBACK")
                    refuse_to_provision_foreign(tenant_id, str(checked.path), tables)
                    return False
                for statement in cached_statements(ddl):
                    conn.execute(statement)
                conn.execute("COMMIT")
        except BaseException:
            if claimed is not None:  # never leave a half-made tenant behind
                self._remove_file(checked.path, (claimed.st_dev, claimed.st_ino))
            raise
        return True

    def drop(self, tenant_id: str, guard: Guard | None = None) -> None:
        checked = self.paths.check(tenant_id)  # never through a link to another's file
        try:
            with self.held_file(tenant_id, checked) as conn:
                if conn is not None:
                    # Checked and removed under the file's write lock: no writer can add
                    # a row between what the guard saw and the unlink.
                    (guard or refuse_rows)(file_contents(conn, str(checked.path)))
                self._remove_file(checked.path, checked.identity)
        except UnreadableFileError as exc:
            # Not a database: no lock to take and no rows to count; the guard decides
            # (refused unless forced, and then its bytes are kept first).
            (guard or refuse_rows)(TenantContents(str(checked.path), {}, unreadable=str(exc)))
            self._remove_file(checked.path, checked.identity)
        parent = checked.path.parent
        if parent != self.paths.root:
            with suppress(OSError), self.paths.parent_dir(parent) as above:
                os.rmdir(parent.name, dir_fd=above)  # only when empty

    @contextmanager
    def held_file(self, tenant_id: str, checked: CheckedFile
                  ) -> Iterator[sqlite3.Connection | None]:
        """The tenant's file (if it exists) open with its write lock held for the block:
        what a destructive act checks and then acts on (None: no file)."""
        if checked.identity is None:
            yield None
            return
        who = f"tenant {tenant_id!r}: {checked.path}"
        try:
            conn = self.open_tenant(tenant_id, checked=checked)
        except sqlite3.Error as exc:
            raise refusal(who, exc, self.timeout) from exc
        with closing(conn), write_locked(conn, who, self.timeout):
            yield conn

    def _remove_file(self, path: Path, identity: tuple[int, int] | None) -> None:
        """Unlink ``path`` and its sidecars inside its directory, reached without links;
        the file only if it is still the one checked (``identity``)."""
        with self.paths.parent_dir(path) as folder:
            if identity is not None:
                with suppress(FileNotFoundError):
                    st = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
                    if (st.st_dev, st.st_ino) != identity:
                        raise TenantFileError(f"{path} was replaced while being removed; "
                                              "left as it is")
                    os.unlink(path.name, dir_fd=folder)
            for suffix in SIDECARS:
                with suppress(FileNotFoundError):
                    os.unlink(path.name + suffix, dir_fd=folder)

    def lock_contents(self, conn: Connection, tenant_id: str) -> TenantContents:
        # A migration connection holds the write lock already (BEGIN IMMEDIATE).
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        return file_contents(dbapi, self.location(tenant_id))

    def read_contents(self, tenant_id: str) -> TenantContents | None:
        checked = self.paths.check(tenant_id)
        if checked.identity is None:
            return None
        with closing(self.open_tenant(tenant_id, readonly=True, checked=checked)) as conn:
            return file_contents(conn, str(checked.path))

    def create_tenant_engine(self, tenant_id: str, pool: PoolSettings) -> Engine:
        self.paths.check(tenant_id)  # refused now rather than at the first checkout
        # Every new pooled connection checks again: a restore replaces the file.
        return sqlite_engine(lambda: self._target(tenant_id), pool)

    @contextmanager
    def tenant_connection(self, tenant_id: str, foreign_keys: bool = True
                          ) -> Iterator[Connection]:
        checked = self._existing(tenant_id)
        with self._router.connect(lambda: self.open_tenant(tenant_id, checked=checked),
                                  foreign_keys) as conn, conn.begin():
            yield conn

    def _existing(self, tenant_id: str) -> CheckedFile:
        checked = self.paths.check(tenant_id)
        if checked.identity is None:  # never create a file by merely connecting to it
            raise RuntimeError(f"tenant {tenant_id!r}: no database file at {checked.path}")
        return checked

    # -- migrations ----------------------------------------------------------------------

    @contextmanager
    def migration_connection(self, tenant_id: str, lock_timeout: float | None = None,
                             statement_timeout: float | None = None) -> Iterator[Connection]:
        # Foreign keys off: Alembic's batch mode recreates tables, which would
        # cascade or fail with them on; check_migrated() runs foreign_key_check
        # before commit instead. BEGIN IMMEDIATE takes the write lock up front,
        # so a second runner waits at most lock_timeout, then fails the tenant.
        checked = self._existing(tenant_id)
        timeout = self.timeout if lock_timeout is None else lock_timeout
        with self._router.connect(
                lambda: self.open_tenant(tenant_id, checked=checked, timeout=timeout),
                False, "BEGIN IMMEDIATE") as conn:
            try:
                transaction = conn.begin()
            except OperationalError as exc:
                raise TenantLockedError(f"tenant {tenant_id!r}: {checked.path} is locked by "
                                        f"another writer (waited {timeout:g}s)") from exc
            with transaction:  # commit on success, rollback on error
                yield conn

    def execute_script(self, conn: Connection, sql: str) -> None:
        # Not executescript(): it COMMITs any open transaction first, which
        # would run the step outside the tenant's transaction.
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        cursor = dbapi.cursor()
        try:
            for statement in cached_statements(sql):
                cursor.execute(statement)
        finally:
            cursor.close()

    def current_revision(self, conn: Connection) -> str | None:
        # One query: in SQLite a statement that fails to prepare leaves the
        # transaction as it was, so "no such table" can simply be caught.
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        try:
            row = dbapi.execute("SELECT max(version_num) FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return None if row[0] is None else str(row[0])

    def check_migrated(self, conn: Connection, tenant_id: str, expected: str | None,
                       deep: bool = False) -> None:
        revision = self.current_revision(conn)
        if revision != expected:
            raise RuntimeError(f"tenant {tenant_id!r} ended at {revision or 'base'}, "
                               f"expected {expected or 'base'}; rolled back")
        if deep:  # tables were rebuilt with foreign keys off: prove nothing dangles
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise RuntimeError(f"tenant {tenant_id!r}: migration would break a foreign "
                                   f"key (table {broken[0]}, row {broken[1]}); rolled back")

    def control_engine(self) -> Engine:
        self.paths.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        path = self.paths.root / CONTROL_SQLITE_FILE

        def target() -> OpenTarget:
            checked = self.paths.check_path(path, "the control file")
            return OpenTarget(file_uri(path, "rwc"), self.timeout,
                              functools.partial(self.paths.verify_open, checked=checked))

        return sqlite_engine(target)

    def catalog(self, tenant_id: str) -> Catalog:
        with self.tenant_connection(tenant_id) as conn:
            return sqlite_catalog(conn)


def _inspect(conn: sqlite3.Connection) -> tuple[int, str | None, list[str] | None]:
    """(DocEX tables present, recorded revision, the tables that make it foreign or None)
    of one tenant file."""
    names = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    revision = None
    if "alembic_version" in names:
        row = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
        revision = row[0] if row else None
    return len(names & set(TABLE_NAMES)), revision, foreign_tables(names)


def _file_size(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", *SIDECARS)
               if os.path.exists(f"{path}{s}"))
