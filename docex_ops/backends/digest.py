"""Row counts and content checksums of tenant tables: one definition that backup,
split and move share (PostgreSQL here, SQLite in sqlite_digest.py).

Content checksum (identical definition on PostgreSQL and SQLite, so a
checksum taken on one kind can be compared with one taken on the other):

- the columns of the table that the tenant has, sorted by name;
- each value rendered as text the way PostgreSQL's ``value::text`` shows it
  (booleans ``true``/``false``, timestamps ``YYYY-MM-DD HH:MM:SS[.ffffff]``
  with trailing zeros of the fraction dropped, uuids hyphenated, JSON as
  stored), then encoded as ``<length in characters>:<text>``; NULL is ``-``;
- a row's text is its encoded values concatenated; the row hash is the md5
  hex of that text (UTF-8);
- the table checksum is the sha256 hex of the row hashes concatenated in
  primary-key order (``id``, compared bytewise: ``COLLATE "C"`` on
  PostgreSQL, SQLite's BINARY), so memory stays at 32 bytes per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.schema.names import TABLE_NAMES

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class TableDigest:
    rows: int
    checksum: str


_COLUMNS_SQL = """
SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attname::text COLLATE "C")
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = 'r' AND a.attnum > 0
   AND NOT a.attisdropped AND c.relname = ANY(%(tables)s)
 GROUP BY 1, 2
"""


def _value_sql(column: str) -> str:
    c = quote_ident(column) + "::text"
    return f"coalesce(length({c})::text || ':' || {c}, '-')"


def digest_aggregates(columns: list[str]) -> str:
    """``count(*), checksum`` over rows named ``x`` having ``columns`` (sorted by name)."""
    row = "concat(" + ", ".join(_value_sql(c) for c in columns) + ")"
    return (f"count(*), encode(sha256(convert_to(coalesce(string_agg("
            f"md5({row}), '' ORDER BY id COLLATE \"C\"), ''), 'UTF8')), 'hex')")


def digest_sql(schema: str, table: str, columns: list[str], where: str | None = None) -> str:
    """Row count and content checksum of one table (definition above).

    ``where`` (optional) restricts the digest to a subset of rows; it may refer
    to the table as ``x`` (the split digests the source rows of one tenant).
    """
    return (f"SELECT '{table}', {digest_aggregates(columns)} "
            f"FROM {quote_ident(schema)}.{quote_ident(table)} x"
            + (f" WHERE {where}" if where else ""))


def unordered_digest_sql(schema: str, table: str, columns: list[str],
                         where: str | None = None) -> str:
    """Row count and an order-independent checksum of one table, for comparing two copies
    made from the same DDL (a move's source and target).

    Each row's text is the row value's own output (columns in table order, NULL
    and '' told apart); the checksum is the sum of its 64-bit hashes
    (``hashtextextended``). No sort, one cast per row instead of one per column
    and no md5: several times faster than ``digest_sql`` on a million rows, and
    parallel workers can share it. Never compared with an archive's
    ``digest_sql`` checksum. ``where`` may refer to the table as ``x``.
    """
    del columns  # the row value covers every column, in table order
    return (f"SELECT '{table}', count(*), coalesce(sum(hashtextextended(x::text, 0)), 0)::text "
            f"FROM {quote_ident(schema)}.{quote_ident(table)} x"
            + (f" WHERE {where}" if where else ""))


def table_columns(conn: Connection, schemas: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per schema, per DocEX table (and alembic_version): its columns sorted by name."""
    rows = conn.exec_driver_sql(
        _COLUMNS_SQL, {"schemas": schemas, "tables": [*TABLE_NAMES, "alembic_version"]}).all()
    found: dict[str, dict[str, list[str]]] = {}
    for schema, table, cols in rows:
        found.setdefault(schema, {})[table] = list(cols)
    return found


def digest_query(schema: str, columns: dict[str, list[str]], ordered: bool = True) -> str:
    """Every DocEX table's digest, and the revision as one more row, in one statement."""
    table_sql = digest_sql if ordered else unordered_digest_sql
    parts = [table_sql(schema, t, columns[t]) for t in TABLE_NAMES if t in columns]
    if "alembic_version" in columns:
        parts.append(f"SELECT 'alembic_version', 0::bigint, max(version_num)::text "
                     f"FROM {quote_ident(schema)}.alembic_version")
    return " UNION ALL ".join(parts)


def parse_digest(rows: Iterable[Any]) -> tuple[dict[str, TableDigest], str | None]:
    tables, revision = {}, None
    for table, count, value in rows:
        if table == "alembic_version":
            revision = value
        else:
            tables[table] = TableDigest(int(count), str(value))
    return tables, revision


def digest_schema(conn: Connection, schema: str, ordered: bool = True
                  ) -> tuple[dict[str, TableDigest], str | None]:
    """Digests and revision of one schema, inside the caller's transaction.

    ``ordered=False``: the order-independent checksum (``unordered_digest_sql``).
    """
    columns = table_columns(conn, [schema]).get(schema)
    if not columns:
        return {}, None
    return parse_digest(conn.exec_driver_sql(digest_query(schema, columns, ordered)))
