"""What a SQLite database file holds besides DocEX's tables, from its ``sqlite_master``.

Read from an archive before a restore creates anything, and from a split's
source. DocEX's tables (and the version table) and their indexes are expected;
SQLite's own tables (``sqlite_sequence``, ``sqlite_stat*``) are ignored; other
tables and their indexes are the tenant's own extra tables; views, triggers and
virtual tables (whose module is code) are of kinds DocEX's schema does not have.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from docex_ops.schema.ddl import VERSION_TABLE
from docex_ops.schema.names import TABLE_NAMES

DOCEX_TABLES = frozenset(TABLE_NAMES) | {VERSION_TABLE}
MASTER_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"

_NAME = r'(?:"((?:[^"]|"")+)"|\[([^\]]+)\]|`((?:[^`]|``)+)`|([A-Za-z_][A-Za-z0-9_$]*))'
_CREATE_TABLE_RE = re.compile(r"CREATE TABLE " + _NAME + r"\s*\(", re.IGNORECASE)
_CREATE_INDEX_RE = re.compile(r"CREATE (?:UNIQUE )?INDEX " + _NAME + r" ON " + _NAME
                              + r"\s*\(", re.IGNORECASE)


@dataclass
class MasterContents:
    docex_tables: list[str] = field(default_factory=list)
    extra_tables: list[tuple[str, str]] = field(default_factory=list)   # (name, CREATE sql)
    extra_indexes: list[tuple[str, str]] = field(default_factory=list)  # (name, CREATE sql)
    # Objects of kinds DocEX's schema does not have: (kind, name, the table a trigger is on).
    refused: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def extra_names(self) -> list[str]:
        return [name for name, _ in self.extra_tables]


def describe(kind: str, name: str, table: str | None) -> str:
    return f"{kind} {name!r}" + (f" on table {table!r}" if table else "")


def _name(match: re.Match[str], first: int) -> str:
    quoted, bracket, tick, plain = match.groups()[first:first + 4]
    if quoted is not None:
        return quoted.replace('""', '"')
    if tick is not None:
        return tick.replace("``", "`")
    return str(bracket if bracket is not None else plain)


def classify(rows: list[tuple[str, str, str, str | None]]) -> MasterContents:
    """Sort every ``sqlite_master`` row (type, name, tbl_name, sql) into what it is."""
    found = MasterContents()
    for kind, name, table, sql in rows:
        text = (sql or "").strip()
        if kind in ("view", "trigger") or text.upper().startswith("CREATE VIRTUAL TABLE"):
            label = "virtual table" if kind == "table" else kind
            found.refused.append((label, name, table if kind == "trigger" else None))
        elif kind == "table" and name in DOCEX_TABLES:
            if name != VERSION_TABLE:
                found.docex_tables.append(name)
        elif kind == "table" and name.startswith("sqlite_"):
            continue  # SQLite's own bookkeeping
        elif kind == "table":
            match = _CREATE_TABLE_RE.match(text)
            if match is None or _name(match, 0) != name or not _one_statement(text):
                found.refused.append(("table whose definition cannot be checked", name, None))
            else:
                found.extra_tables.append((name, text))
        elif kind == "index" and (sql is None or table in DOCEX_TABLES):
            continue  # a key's own index, or one on DocEX's tables: ours are built instead
        elif kind == "index":
            match = _CREATE_INDEX_RE.match(text)
            if match is None or _name(match, 0) != name or _name(match, 4) != table \
                    or not _one_statement(text):
                found.refused.append(("index whose definition cannot be checked", name, table))
            else:
                found.extra_indexes.append((name, text))
        else:
            found.refused.append((kind, name, None))
    return found


def _one_statement(sql: str) -> bool:
    """``sql`` is exactly one statement: no ``;`` ends a statement before its end."""
    for end, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[:end + 1]) and sql[end + 1:].strip():
            return False
    return True
