"""Row counts and content checksums of SQLite tables (definition in backends/digest.py).

The work is done inside SQLite, one query per table: a registered function
(``docex_row_md5``) receives each row's values, in column-name order, and
returns the row's md5; the rows arrive in primary-key order and Python only
feeds those md5s to the table's sha256. A backup of many small tenants then
pays per query and per row, not per value and per round trip.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from docex_ops.backends.digest import TableDigest
from docex_ops.schema.names import TABLE_NAMES

Columns = list[tuple[str, str]]  # (name, declared type)
FETCH = 2000


def _render_datetime(value: Any) -> str:
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.year < 1000:  # strftime's %Y does not pad these: keep its exact output
        rendered = moment.strftime("%Y-%m-%d %H:%M:%S")
        return rendered + (f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond
                           else "")
    # "YYYY-MM-DD HH:MM:SS.ffffff[+HH:MM]": the same text as strftime, a lot faster.
    iso = moment.isoformat(" ", "microseconds")
    return iso[:19] + ("." + iso[20:26].rstrip("0") if moment.microsecond else "")


def _render_bool(value: Any) -> str:
    if isinstance(value, int):
        return "true" if value else "false"
    return str(value)


def _render_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


RENDERERS: dict[str, Callable[[Any], str]] = {
    # Timestamps repeat a lot (created_at = updated_at, a batch written at once).
    "datetime": functools.lru_cache(maxsize=4096)(_render_datetime),
    "bool": _render_bool, "uuid": _render_uuid, "text": str}


def value_kind(declared_type: str) -> str:
    """How a column's values are rendered, from its declared type (a RENDERERS key)."""
    t = declared_type.upper()
    if "DATETIME" in t or "TIMESTAMP" in t:
        return "datetime"
    if "BOOL" in t:
        return "bool"
    if t in ("CHAR(32)", "UUID"):
        return "uuid"
    return "text"


@functools.lru_cache(maxsize=256)
def _renderers(kinds: str) -> tuple[Callable[[Any], str] | None, ...]:
    """Per column its renderer; None for text, whose str values are used as they are."""
    return tuple(None if kind == "text" else RENDERERS[kind] for kind in kinds.split(","))


def row_md5(kinds: str, *values: Any) -> str:
    """md5 hex of one row: each value as ``<length>:<text>`` (NULL: ``-``), concatenated.

    Called once per row by SQLite, so it is written for speed.
    """
    parts = []
    for render, value in zip(_renderers(kinds), values):  # noqa: B905 - arity from SQL
        if value is None:
            parts.append("-")
            continue
        text = value if render is None and value.__class__ is str else (render or str)(value)
        parts.append(f"{len(text)}:{text}")
    return hashlib.md5("".join(parts).encode()).hexdigest()


def register_functions(conn: sqlite3.Connection) -> None:
    """Make ``docex_row_md5`` available on ``conn``, once per connection (redefining a
    function fails while another statement is running on it)."""
    try:
        conn.execute("SELECT docex_row_md5('text', 1)").fetchone()
    except sqlite3.OperationalError:
        conn.create_function("docex_row_md5", -1, row_md5, deterministic=True)


def digest_sql(table: str, columns: Columns, schema: str = "main",
               where: str | None = None) -> str:
    """The query yielding one md5 per row of ``table``, in primary-key order."""
    ordered = sorted(columns)
    kinds = ",".join(value_kind(decl) for _, decl in ordered)
    values = ", ".join(f'x."{name}"' for name, _ in ordered)
    return (f"SELECT docex_row_md5('{kinds}', {values}) FROM \"{schema}\".\"{table}\" x"
            + (f" WHERE {where}" if where else "") + " ORDER BY x.id COLLATE BINARY")


def _quoted(name: str) -> str:
    return name.replace('"', '""')


_COLUMNS_BY_DEFINITION: dict[tuple[str, str], Columns] = {}


def table_columns(conn: sqlite3.Connection, schema: str = "main",
                  table: str | None = None) -> dict[str, Columns]:
    """Every table's (or one table's) columns and declared types.

    SQLite keeps each table's CREATE statement, rewritten by every ALTER, in
    sqlite_master: equal statements mean equal columns, so thousands of
    tenants on the same schema ask ``table_info`` once per table, not once each.
    """
    sql = f'SELECT name, sql FROM "{schema}".sqlite_master WHERE type = \'table\'' + (
        " AND name = ?" if table else "")
    found: dict[str, Columns] = {}
    for name, definition in conn.execute(sql, (table,) if table else ()).fetchall():
        key = (name, definition or "")
        columns = _COLUMNS_BY_DEFINITION.get(key)
        if columns is None:
            columns = [(column, decl or "") for _cid, column, decl, *_ in
                       conn.execute(f'PRAGMA "{schema}".table_info("{_quoted(name)}")')]
            if len(_COLUMNS_BY_DEFINITION) > 4096:  # many distinct schemas: stay bounded
                _COLUMNS_BY_DEFINITION.clear()
            _COLUMNS_BY_DEFINITION[key] = columns
        found[name] = columns
    return found


def digest_table(conn: sqlite3.Connection, table: str, schema: str = "main",
                 where: str | None = None, params: dict[str, Any] | None = None,
                 columns: Columns | None = None) -> TableDigest:
    """Row count and checksum of one table.

    ``schema`` names an attached database; ``where`` (optional, the table is
    ``x`` in it) restricts the digest to a subset of rows (used by the split).
    """
    register_functions(conn)
    if columns is None:
        columns = table_columns(conn, schema, table).get(table, [])
    return _digest(conn, table, columns, schema, where, params)


def _digest(conn: sqlite3.Connection, table: str, columns: Columns, schema: str = "main",
            where: str | None = None, params: dict[str, Any] | None = None) -> TableDigest:
    outer = hashlib.sha256()
    rows = 0
    cursor = conn.execute(digest_sql(table, columns, schema, where), params or {})
    while batch := cursor.fetchmany(FETCH):
        outer.update("".join(md5 for (md5,) in batch).encode())
        rows += len(batch)
    return TableDigest(rows, outer.hexdigest())


def digest_database(conn: sqlite3.Connection, schema: str = "main"
                    ) -> tuple[dict[str, TableDigest], str | None]:
    """Every DocEX table's digest and the recorded revision, in one read transaction."""
    in_transaction = conn.in_transaction
    if not in_transaction:
        conn.execute("BEGIN")
    try:
        register_functions(conn)
        columns = table_columns(conn, schema)
        tables = {t: _digest(conn, t, columns[t], schema)
                  for t in TABLE_NAMES if t in columns}
        revision = None
        if "alembic_version" in columns:
            revision = conn.execute(
                f'SELECT max(version_num) FROM "{schema}".alembic_version').fetchone()[0]
    finally:
        if not in_transaction:
            conn.execute("ROLLBACK")
    return tables, revision
