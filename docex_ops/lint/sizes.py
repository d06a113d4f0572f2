"""The fleet's sizes that make findings concrete: per table name the largest tenant's
rows (``pg_class.reltuples``, no scan) and a scan rate measured on the server, so a
finding says how long its lock is held at worst."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docex_ops.backends.registry import KindRegistry

if TYPE_CHECKING:
    from docex_ops.backends.base import Backend
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

SAMPLE_ROWS = 100_000  # rows read to measure the scan rate: bounded, whatever the table


@dataclass
class TableSize:
    rows: int
    tenant: str


@dataclass
class FleetSizes:
    tables: dict[str, TableSize] = field(default_factory=dict)  # table name -> largest
    rows_per_second: float | None = None

    def worst_seconds(self, rows: int) -> float | None:
        return round(rows / self.rows_per_second, 3) if self.rows_per_second else None


def fleet_sizes(manager: TenantDatabaseManager) -> FleetSizes:
    """The largest tenant table per name over every server (one catalog query each)."""
    sizes = FleetSizes()
    schemas: dict[str, list[str]] = {}
    for info in manager.discover().tenants:  # discovery placed each tenant already
        server = info.server or manager.settings.directory_server
        schemas.setdefault(server, []).append(info.location)
    for server, locations in schemas.items():
        backend = manager.servers[server]
        SIZE_READERS.for_kind(backend.kind)(backend, locations, sizes)
    return sizes


def pg_sizes(backend: Backend, schemas: list[str], sizes: FleetSizes) -> None:
    from sqlalchemy import text

    if not schemas:
        return
    query = text("SELECT DISTINCT ON (c.relname) c.relname, n.nspname, "
                 "greatest(c.reltuples, 0)::bigint FROM pg_class c JOIN pg_namespace n "
                 "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
                 "AND n.nspname = ANY(:schemas) ORDER BY c.relname, c.reltuples DESC")
    with backend.control_engine().connect() as conn:
        for table, schema, rows in conn.execute(query, {"schemas": schemas}):
            known = sizes.tables.get(table)
            if known is None or rows > known.rows:
                sizes.tables[table] = TableSize(int(rows), schema)
        largest = max(sizes.tables.items(), key=lambda kv: kv[1].rows, default=None)
        if largest and largest[1].rows and sizes.rows_per_second is None:
            sizes.rows_per_second = _scan_rate(conn, largest[1].tenant, largest[0])


def _scan_rate(conn: object, schema: str, table: str) -> float | None:
    from sqlalchemy import text

    started = time.perf_counter()
    sql = (f'SELECT count(*) FROM (SELECT 1 FROM "{schema}"."{table}" '
           f"LIMIT {SAMPLE_ROWS}) s")
    read = int(conn.execute(text(sql)).scalar_one())  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    return read / seconds if read and seconds > 0 else None


def no_sizes(backend: Backend, schemas: list[str], sizes: FleetSizes) -> None:
    """SQLite: the rebuild findings stand per table; no catalog estimate to read."""


SizeReader = Callable[["Backend", list[str], FleetSizes], None]
SIZE_READERS = KindRegistry[SizeReader]("lint fleet sizes", {
    "postgresql": "docex_ops.lint.sizes:pg_sizes",
    "sqlite": "docex_ops.lint.sizes:no_sizes",
})
