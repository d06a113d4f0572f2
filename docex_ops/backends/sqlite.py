"""SQLite: one database file per tenant, under the storage root."""

from __future__ import annotations

import fcntl
import glob
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from docex_ops.backends.base import Backend, TenantInfo, TenantLockedError
from docex_ops.backends.catalog import Catalog, sqlite_catalog
from docex_ops.config import PoolSettings, Settings
from docex_ops.schema import TABLE_NAMES
from docex_ops.tenancy import CONTROL_SQLITE_FILE, sqlite_path_for, tenant_id_pattern

DIR_MODE = 0o750
FILE_MODE = 0o640
SIDECARS = ("-wal", "-shm", "-journal")


def sqlite_engine(path: Path, pool: PoolSettings | None = None, foreign_keys: bool = True,
                  begin: str = "BEGIN", timeout: float = 30) -> Engine:
    """An engine on one file with real transactions (DDL included) and DocEX's pragmas.

    pysqlite's legacy transaction handling commits around DDL; taking over
    BEGIN ourselves makes a migration or a provisioning one transaction.
    """
    kwargs: dict[str, Any]
    if pool is None:
        kwargs = {"poolclass": NullPool}
    else:
        kwargs = {"pool_size": pool.pool_size, "max_overflow": pool.max_overflow,
                  "pool_timeout": pool.pool_timeout}
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": timeout}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


@dataclass(frozen=True)
class _Route:
    path: Path
    foreign_keys: bool
    begin: str
    timeout: float


class FileRouter:
    """One engine for operator work over many tenant files.

    Creating an engine per tenant costs more than a small migration; this one
    is made once, pools nothing, and opens whichever file the calling thread
    asked for, with the same transaction handling as ``sqlite_engine``.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self.engine = create_engine("sqlite://", creator=self._open, poolclass=NullPool)
        event.listen(self.engine, "begin", self._on_begin)

    def _open(self) -> sqlite3.Connection:
        route: _Route = self._local.route
        conn = sqlite3.connect(route.path, timeout=route.timeout, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA foreign_keys={'ON' if route.foreign_keys else 'OFF'}")
        return conn

    def _on_begin(self, conn: Connection) -> None:
        conn.exec_driver_sql(self._local.route.begin)

    @contextmanager
    def connect(self, path: Path, foreign_keys: bool = True, begin: str = "BEGIN",
                timeout: float = 30) -> Iterator[Connection]:
        self._local.route = _Route(path, foreign_keys, begin, timeout)
        with self.engine.connect() as conn:
            yield conn


@lru_cache(maxsize=32)
def _statements(script: str) -> tuple[str, ...]:
    """split_statements, remembered: provisioning sends the same DDL to every tenant."""
    return tuple(split_statements(script))


def split_statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script, as SQLite itself delimits them."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if any(not text.strip().startswith("--") for text in statement.splitlines()
                   if text.strip()):
                yield statement
    if buffer.strip() and not all(text.strip().startswith("--") or not text.strip()
                                  for text in buffer.splitlines()):
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer[:80]!r}")


def readonly_uri(path: Path | str) -> str:
    """The URI that opens ``path`` read-only, as a plain path: every character that means
    something in a URI (``%``, ``?``, ``#``) is percent-encoded, so a name such as
    ``b%2Fdocex.db`` can never reach another file."""
    return f"file:{quote(str(path), safe='/')}?mode=ro"


def open_readonly(path: Path | str, timeout: float = 30) -> sqlite3.Connection:
    """A read-only connection that can never create or modify the file."""
    return sqlite3.connect(readonly_uri(path), uri=True, timeout=timeout)


class SqliteBackend(Backend):
    kind = "sqlite"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._template = settings.sqlite.path_template
        self._pattern = tenant_id_pattern(self._template)
        self.storage_root = settings.sqlite.storage_root
        self._router = FileRouter()

    def location(self, tenant_id: str) -> str:
        return str(self.path(tenant_id))

    def path(self, tenant_id: str) -> Path:
        return sqlite_path_for(tenant_id, self._template, self.storage_root)

    def files_dir(self, tenant_id: str) -> Path:
        # Next to the tenant's database file: one directory holds all of a tenant.
        return self.path(tenant_id).parent / "files"

    def _tenant_files(self) -> Iterator[tuple[str, str]]:
        """(tenant id, file path) of every tenant file, sorted by path."""
        for path_text in sorted(glob.glob(glob.escape(self._template).replace(
                glob.escape("{tenant_id}"), "*"))):
            match = self._pattern.fullmatch(path_text)
            if match and os.path.isfile(path_text):
                yield match["tenant_id"], path_text

    def tenant_ids(self) -> list[str]:
        # The file names suffice: opening thousands of files is what discover() pays for.
        return sorted(tenant_id for tenant_id, _ in self._tenant_files())

    def discover(self, with_size: bool = False) -> list[TenantInfo]:
        found = []
        for tenant_id, path_text in self._tenant_files():
            try:
                tables, revision = _inspect_file(Path(path_text))
            except sqlite3.DatabaseError:
                # Unreadable (corrupt, hot journal, malformed schema): still a tenant that
                # exists; listing it as empty lets verify-isolation say what is wrong.
                tables, revision = 0, None
            size = _file_size(Path(path_text)) if with_size else None
            found.append(TenantInfo(tenant_id, path_text, tables, revision, size))
        return found

    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        result: dict[str, str | None] = {}
        for tenant_id in tenant_ids:
            path = self.path(tenant_id)
            result[tenant_id] = _inspect_file(path)[1] if path.exists() else None
        return result

    def exists(self, tenant_id: str) -> bool:
        return self.path(tenant_id).exists()

    def create(self, tenant_id: str, ddl: str) -> bool:
        path = self.path(tenant_id)
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        try:  # claim the file: exactly one creator makes it, with our permissions
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
            claimed = True
        except FileExistsError:
            claimed = False
        try:
            with closing(sqlite3.connect(path, isolation_level=None, timeout=30)) as conn:
                # The write lock first, then the check: a concurrent creator waits
                # here and then finds the tables; an empty file (ours, or left by a
                # crash) is filled, as an empty PostgreSQL schema is.
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    conn.execute("ROLLBACK")
                    return False
                for statement in _statements(ddl):
                    conn.execute(statement)
                conn.execute("COMMIT")
        except BaseException:
            if claimed:  # never leave a half-made tenant behind
                path.unlink(missing_ok=True)
            raise
        return True

    def drop(self, tenant_id: str) -> None:
        path = self.path(tenant_id)
        for suffix in ("", *SIDECARS):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        parent = path.parent
        if parent != self.storage_root.resolve() and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()

    def create_tenant_engine(self, tenant_id: str, pool: PoolSettings) -> Engine:
        return sqlite_engine(self.path(tenant_id), pool)

    @contextmanager
    def tenant_connection(self, tenant_id: str, foreign_keys: bool = True
                          ) -> Iterator[Connection]:
        path = self.path(tenant_id)
        if not path.exists():  # never create a file by merely connecting to it
            raise RuntimeError(f"tenant {tenant_id!r}: no database file at {path}")
        with self._router.connect(path, foreign_keys) as conn, conn.begin():
            yield conn

    # -- migrations ----------------------------------------------------------------------

    @contextmanager
    def migration_connection(self, tenant_id: str, lock_timeout: float | None = None,
                             statement_timeout: float | None = None) -> Iterator[Connection]:
        # Foreign keys off: Alembic's batch mode recreates tables, which would
        # cascade or fail with them on; check_migrated() runs foreign_key_check
        # before commit instead. BEGIN IMMEDIATE takes the write lock up front,
        # so a second runner waits at most lock_timeout, then fails the tenant.
        path = self.path(tenant_id)
        if not path.exists():
            raise RuntimeError(f"tenant {tenant_id!r}: no database file at {path}")
        timeout = 30 if lock_timeout is None else lock_timeout
        with self._router.connect(path, False, "BEGIN IMMEDIATE", timeout) as conn:
            try:
                transaction = conn.begin()
            except OperationalError as exc:
                raise TenantLockedError(
                    f"tenant {tenant_id!r}: {path} is locked by another writer") from exc
            with transaction:  # commit on success, rollback on error
                yield conn

    def execute_script(self, conn: Connection, sql: str) -> None:
        # Not executescript(): it COMMITs any open transaction first, which
        # would run the step outside the tenant's transaction.
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, sqlite3.Connection)
        cursor = dbapi.cursor()
        try:
            for statement in _statements(sql):
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

    @contextmanager
    def runner_lock(self, wait: bool) -> Iterator[None]:
        self.storage_root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        path = self.storage_root / "_docex_ops.lock"
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as exc:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise TenantLockedError(f"another migration run holds {path}: {holder}; "
                                        "wait for it or rerun with --wait") from exc
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def control_engine(self) -> Engine:
        self.storage_root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        return sqlite_engine(self.storage_root / CONTROL_SQLITE_FILE)

    def catalog(self, tenant_id: str) -> Catalog:
        with self.tenant_connection(tenant_id) as conn:
            return sqlite_catalog(conn)


def _inspect_file(path: Path) -> tuple[int, str | None]:
    """(DocEX tables present, recorded revision) of one tenant file, read-only."""
    with closing(open_readonly(path)) as conn:
        names = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = None
        if "alembic_version" in names:
            row = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
            revision = row[0] if row else None
    return len(names & set(TABLE_NAMES)), revision


def _file_size(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{s}") for s in ("", *SIDECARS)
               if os.path.exists(f"{path}{s}"))
