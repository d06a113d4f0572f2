"""The objects a tenant is expected to hold: the DocEX tables and Alembic's version table."""

from __future__ import annotations

from docex_ops.schema.ddl import VERSION_TABLE
from docex_ops.schema.names import TABLE_NAMES

EXPECTED_TABLES = frozenset(TABLE_NAMES) | {VERSION_TABLE}
# Names whose presence elsewhere on a search path would shadow a tenant's tables.
SHADOWABLE_NAMES = tuple(sorted(EXPECTED_TABLES))

RELKIND_LABELS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view",
                  "S": "sequence", "f": "foreign table", "c": "composite type"}


def kind_label(kind: str) -> str:
    return RELKIND_LABELS.get(kind, kind)


def missing_tables(present: set[str]) -> list[str]:
    """DocEX tables (not the version table: adopted tenants lack it) absent from a tenant."""
    return sorted(set(TABLE_NAMES) - present)
