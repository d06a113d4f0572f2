"""SQLite connections: engines and routers over checked tenant files, plain-path URIs,
and what an error says about a file (locked or corrupt). Used by the SQLite backend."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

from docex_ops.backends.base import CORRUPT, LOCKED
from docex_ops.config.settings import PoolSettings, Settings

DIR_MODE = 0o750
FILE_MODE = 0o640
SIDECARS = ("-wal", "-shm", "-journal")
# The busy timeout when no settings are at hand (archives, split sources): the default
# of database.lock_timeout; a tenant file is always opened with the configured one.
DEFAULT_TIMEOUT = Settings.lock_timeout

Opener = Callable[[], sqlite3.Connection]


@dataclass(frozen=True)
class OpenTarget:
    """What a new pooled connection opens: a checked file's URI, and the check that the
    connection holds that very file."""

    uri: str
    timeout: float
    verify: Callable[[sqlite3.Connection], None]


def _connection_class(target: Callable[[], OpenTarget]) -> type[sqlite3.Connection]:
    """A ``factory`` for sqlite3.connect that opens ``target()`` instead of the URL's
    database: the engine keeps SQLAlchemy's own connect path (the connection budget
    counts it) while every connection is checked before and verified after opening."""

    class CheckedConnection(sqlite3.Connection):
        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            opened = target()
            super().__init__(opened.uri, uri=True, timeout=opened.timeout,
                             isolation_level=None, check_same_thread=False)
            try:
                opened.verify(self)
            except BaseException:
                self.close()
                raise

    return CheckedConnection


def sqlite_engine(target: Callable[[], OpenTarget], pool: PoolSettings | None = None,
                  foreign_keys: bool = True, begin: str = "BEGIN") -> Engine:
    """An engine whose connections open ``target()`` (a checked file), with real
    transactions (DDL included) and DocEX's pragmas.

    pysqlite's legacy transaction handling commits around DDL; taking over
    BEGIN ourselves makes a migration or a provisioning one transaction.
    """
    kwargs: dict[str, Any]
    if pool is None:
        kwargs = {"poolclass": NullPool}
    else:
        kwargs = {"poolclass": QueuePool, "pool_size": pool.pool_size,
                  "max_overflow": pool.max_overflow, "pool_timeout": pool.pool_timeout}
    engine = create_engine("sqlite://", connect_args={"factory": _connection_class(target)},
                           **kwargs)

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
    opener: Opener
    foreign_keys: bool
    begin: str


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
        conn = route.opener()
        conn.execute(f"PRAGMA foreign_keys={'ON' if route.foreign_keys else 'OFF'}")
        return conn

    def _on_begin(self, conn: Connection) -> None:
        conn.exec_driver_sql(self._local.route.begin)

    @contextmanager
    def connect(self, opener: Opener, foreign_keys: bool = True, begin: str = "BEGIN"
                ) -> Iterator[Connection]:
        self._local.route = _Route(opener, foreign_keys, begin)
        with self.engine.connect() as conn:
            yield conn


@lru_cache(maxsize=32)
def cached_statements(script: str) -> tuple[str, ...]:
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


def file_uri(path: Path | str, mode: str) -> str:
    """The URI that opens ``path`` as a plain path (``mode``: ro, rw, rwc): every
    character that means something in a URI (``%``, ``?``, ``#``) is percent-encoded,
    so a name such as ``b%2Fdocex.db`` can never reach another file; ``rw`` never
    creates a missing file."""
    return f"file:{quote(str(path), safe='/')}?mode={mode}"


def readonly_uri(path: Path | str) -> str:
    """The URI that opens ``path`` read-only, as a plain path (see ``file_uri``)."""
    return file_uri(path, "ro")


def open_readonly(path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> sqlite3.Connection:
    """A read-only connection that can never create or modify the file."""
    return sqlite3.connect(readonly_uri(path), uri=True, timeout=timeout)


def condition_of(exc: sqlite3.Error) -> str:
    """LOCKED when another connection holds the file past the busy timeout, else CORRUPT
    (not a database, malformed, or unreadable)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc):
        return LOCKED
    return CORRUPT
