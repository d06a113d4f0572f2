"""SQLite file facts for the isolation audit, read without ever writing a file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from docex_ops.backends.sqlite import open_readonly


@dataclass(frozen=True)
class SqliteObject:
    type: str       # table, index, view, trigger
    name: str
    table: str      # tbl_name
    sql: str


@dataclass(frozen=True)
class SqliteContents:
    quick_check: tuple[str, ...]      # ("ok",) on a sound file
    objects: tuple[SqliteObject, ...]
    error: str | None = None          # the file could not be opened or read


def read_contents(path: Path) -> SqliteContents:
    """``PRAGMA quick_check`` and every schema object of one tenant file, read-only."""
    try:
        with closing(open_readonly(path)) as conn:
            check = tuple(str(row[0]) for row in conn.execute("PRAGMA quick_check"))
            objects = tuple(SqliteObject(str(t), str(n), str(tbl), str(sql or ""))
                            for t, n, tbl, sql in conn.execute(
                                "SELECT type, name, tbl_name, sql FROM sqlite_master "
                                "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name"))
    except sqlite3.DatabaseError as exc:
        return SqliteContents((), (), f"{type(exc).__name__}: {exc}")
    return SqliteContents(check, objects)
