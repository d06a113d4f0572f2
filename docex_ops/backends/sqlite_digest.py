"""The content checksum of SQLite tables (definition in backends/archive.py).

Each value is rendered and encoded (``<length>:<text>`` or ``-``) by SQL
inside SQLite's own query loop, so Python only hashes one text per row.
The SQL covers the forms DocEX stores (text, integers, SQLAlchemy's
``YYYY-MM-DD HH:MM:SS.ffffff`` timestamps, 0/1 booleans); any other value
(a real, a blob, text holding NUL, a timestamp in another ISO form, a uuid)
goes to ``docex_encode``, a deterministic SQL function running the Python
renderers below, which are the reference: both paths give the same text
for every value (tests/test_sqlite_digest.py compares them).
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from docex_ops.backends.archive import TableDigest

ENCODE_FUNCTION = "docex_encode"
DATETIME, BOOLEAN, UUID, TEXT = "datetime", "boolean", "uuid", "text"


def _render_datetime(value: Any) -> str:
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    rendered = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        rendered += f".{moment.microsecond:06d}".rstrip("0")
    return rendered


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
    DATETIME: _render_datetime, BOOLEAN: _render_bool, UUID: _render_uuid, TEXT: str}


def value_kind(declared_type: str) -> str:
    """How a column's values are rendered: as PostgreSQL's ``::text`` shows the column."""
    t = declared_type.upper()
    if "DATETIME" in t or "TIMESTAMP" in t:
        return DATETIME
    if "BOOL" in t:
        return BOOLEAN
    if t in ("CHAR(32)", "UUID"):
        return UUID
    return TEXT


def encode_value(kind: str, value: Any) -> str:
    """The reference encoding of one stored value (the SQL function ``docex_encode``)."""
    if value is None:
        return "-"
    text = RENDERERS[kind](value)
    return f"{len(text)}:{text}"


def _length_prefixed(expr: str) -> str:
    return f"length({expr}) || ':' || {expr}"


_DAY = "[1-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]"
_SECOND = _DAY + " [0-2][0-9]:[0-5][0-9]:[0-5][0-9]"


def _six_digit_fraction(v: str) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` without the fraction's trailing zeros, encoded; by
    suffix comparisons, much cheaper than rtrim() (SQLAlchemy writes this form)."""
    cases = " ".join(f"WHEN substr({v}, {end}) <> '{'0' * (27 - end)}' "
                     f"THEN '{end}:' || substr({v}, 1, {end})" for end in range(26, 20, -1))
    return f"CASE {cases} ELSE '19:' || substr({v}, 1, 19) END"


def _datetime_sql(v: str, fallback: str) -> str:
    """``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS`` and ``...SS.f`` (1 to 6 digits) rendered in
    SQL when ``datetime.fromisoformat`` accepts them: a real calendar day (date()
    normalises 02-31 to 03-03, hence the comparison; days up to 28 need no check) and
    clock time. Years before 1000 go to the fallback (strftime("%Y") does not pad
    them). Lengths are taken in bytes: text holding NUL, where length() and GLOB
    stop, never matches."""
    day = f"substr({v}, 1, 10)"
    valid = (f"substr({v}, 6, 2) BETWEEN '01' AND '12' AND (substr({v}, 9, 2) BETWEEN '01' "
             f"AND '28' OR date({day}, '+0 days') = {day})")
    clock = f"substr({v}, 12, 2) <= '23' AND {valid}"
    # A fraction with a non-zero digit: dropping the trailing zeros of the whole text
    # drops exactly those of the fraction.
    trimmed = f"length(rtrim({v}, '0')) || ':' || rtrim({v}, '0')"
    whole_second = f"'19:' || substr({v}, 1, 19)"
    return (f"CASE WHEN {v} IS NULL THEN '-' WHEN typeof({v}) <> 'text' THEN {fallback} "
            f"ELSE CASE length(CAST({v} AS BLOB)) "
            f"WHEN 26 THEN CASE WHEN {v} GLOB '{_SECOND}.{'[0-9]' * 6}' AND {clock} THEN "
            f"{_six_digit_fraction(v)} "
            f"ELSE {fallback} END "
            f"WHEN 19 THEN CASE WHEN {v} GLOB '{_SECOND}' AND {clock} THEN '19:' || {v} "
            f"ELSE {fallback} END "
            f"WHEN 10 THEN CASE WHEN {v} GLOB '{_DAY}' AND {valid} "
            f"THEN '19:' || {v} || ' 00:00:00' ELSE {fallback} END "
            f"ELSE CASE WHEN length(CAST({v} AS BLOB)) BETWEEN 21 AND 25 "
            f"AND {v} GLOB '{_SECOND}.[0-9]*' AND substr({v}, 21) NOT GLOB '*[^0-9]*' "
            f"AND {clock} THEN CASE WHEN rtrim(substr({v}, 21), '0') = '' THEN {whole_second} "
            f"ELSE {trimmed} END ELSE {fallback} END END END")


def value_sql(column: str, kind: str) -> str:
    """SQL giving the encoded value of ``x.<column>``, exactly as ``encode_value``."""
    v = f'x."{column}"'
    fallback = f"{ENCODE_FUNCTION}('{kind}', {v})"
    if kind == TEXT:
        # length() stops at a NUL character where Python's len() does not: fall back.
        plain = f"CASE WHEN instr({v}, char(0)) THEN {fallback} ELSE {_length_prefixed(v)} END"
        return (f"CASE typeof({v}) WHEN 'null' THEN '-' WHEN 'integer' THEN "
                f"{_length_prefixed(v)} WHEN 'text' THEN {plain} ELSE {fallback} END")
    if kind == BOOLEAN:
        return (f"CASE typeof({v}) WHEN 'null' THEN '-' WHEN 'integer' THEN "
                f"CASE WHEN {v} THEN '4:true' ELSE '5:false' END ELSE {fallback} END")
    if kind == DATETIME:
        return _datetime_sql(v, fallback)
    return f"CASE WHEN {v} IS NULL THEN '-' ELSE {fallback} END"


def register_functions(conn: sqlite3.Connection) -> None:
    """Make ``docex_encode`` callable on ``conn`` (needed by ``value_sql``)."""
    conn.create_function(ENCODE_FUNCTION, 2, encode_value, deterministic=True)


def row_sql(columns: list[tuple[str, str]]) -> str:
    """The row's text: its columns' encodings, in the given (sorted) order."""
    return " || ".join(value_sql(name, value_kind(decl)) for name, decl in columns) or "''"


def sorted_columns(conn: sqlite3.Connection, table: str, schema: str = "main"
                   ) -> list[tuple[str, str]]:
    """(name, declared type) of a table's columns, sorted by name (bytewise)."""
    return sorted(((name, decl or "") for _cid, name, decl, *_ in
                   conn.execute(f'PRAGMA "{schema}".table_info("{table}")')),
                  key=lambda c: c[0].encode())


def digest_table(conn: sqlite3.Connection, table: str, schema: str = "main",
                 where: str | None = None, params: dict[str, Any] | None = None
                 ) -> TableDigest:
    """Row count and checksum of one table (definition in backends/archive.py).

    ``schema`` names an attached database; ``where`` (optional, the table is
    ``x`` in it) restricts the digest to a subset of rows (used by the split).
    """
    register_functions(conn)
    sql = (f'SELECT {row_sql(sorted_columns(conn, table, schema))} '
           f'FROM "{schema}"."{table}" x' + (f" WHERE {where}" if where else "")
           + " ORDER BY x.id COLLATE BINARY")
    outer = hashlib.sha256()
    md5 = hashlib.md5
    rows = 0
    cursor = conn.execute(sql, params or {})
    while batch := cursor.fetchmany(2000):
        outer.update(b"".join(md5(text.encode()).hexdigest().encode() for (text,) in batch))
        rows += len(batch)
    return TableDigest(rows, outer.hexdigest())
