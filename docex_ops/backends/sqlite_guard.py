"""SQLite: hold a tenant file against writers and read what it holds, for a destructive act.

``BEGIN IMMEDIATE``, not ``BEGIN EXCLUSIVE``: it keeps every other writer out
from the check until the act is done (the one thing that could add or change a
row), and still lets a reader in, which the safety backup needs (SQLite's backup
API reads from its own connection; under EXCLUSIVE it would wait for us, and a
backup through our own connection waits on itself). Readers change nothing.
The wait for a writer that holds the file is the busy timeout, the lock timeout.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from docex_ops.backends.base import LOCKED, TenantLockedError
from docex_ops.backends.contents import VERSION_TABLE, TenantContents, UnreadableFileError
from docex_ops.backends.sqlite_connect import condition_of


@contextmanager
def write_locked(conn: sqlite3.Connection, who: str, timeout: float
                 ) -> Iterator[sqlite3.Connection]:
    """``conn`` (autocommit) with the file's write lock held for the block, rolled back at
    the end: the act works on the file itself, not through this connection."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise refusal(who, exc, timeout) from exc
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")


def file_contents(conn: sqlite3.Connection, location: str, timeout: float | None = None
                  ) -> TenantContents:
    """Rows of every table of the file (alembic_version left out), inside ``conn``'s
    transaction (UnreadableFileError: SQLite cannot read it)."""
    try:
        tables = [str(r[0]) for r in conn.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%'")]
        rows = {t: int(conn.execute(f"SELECT count(*) FROM main.{_quote(t)}").fetchone()[0])
                for t in tables if t != VERSION_TABLE}
    except sqlite3.Error as exc:
        raise refusal(location, exc, timeout) from exc
    return TenantContents(location, rows)


def copy_bytes(folder: int, name: str, dest: Path, tenant_id: str) -> Path:
    """Copy the file ``name`` of the directory fd ``folder`` (never through a link) into a
    new file in ``dest``, synced; its path."""
    copy = dest / f"{tenant_id}.{time.strftime('%Y%m%dT%H%M%S')}.unreadable.db"
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    with open(fd, "rb") as source, open(copy, "xb") as target:
        shutil.copyfileobj(source, target)
        target.flush()
        os.fsync(target.fileno())
    return copy


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def refusal(who: str, exc: sqlite3.Error, timeout: float | None) -> RuntimeError:
    """TenantLockedError for a file held past the timeout, else UnreadableFileError."""
    if condition_of(exc) == LOCKED:
        waited = f" (waited {timeout:g}s, the lock timeout)" if timeout is not None else ""
        return TenantLockedError(f"{who} is held by another connection{waited}: {exc}; "
                                 "nothing was changed")
    return UnreadableFileError(f"{who} is not a readable SQLite database (corrupt): {exc}")
