"""The control schema on the control server, read on discovery's plain connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.migrate.servers import control_backend

if TYPE_CHECKING:
    from docex_ops.backends.postgres import PostgresBackend
    from docex_ops.manager.tenant_manager import TenantDatabaseManager


class PgControl:
    def __init__(self, conn: Any, schema: str) -> None:
        self.conn, self.schema = conn, schema

    def has(self, table: str) -> bool:
        found = self.conn.exec_driver_sql("SELECT to_regclass(%(t)s) IS NOT NULL",
                                          {"t": self.name(table)}).all()
        return bool(found[0][0])

    def name(self, table: str) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(table)}"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.exec_driver_sql(sql).all()]


@contextmanager
def open_control(manager: TenantDatabaseManager) -> Iterator[PgControl]:
    backend = cast("PostgresBackend", control_backend(manager))
    with backend.discovery_connection() as conn:
        try:
            yield PgControl(conn, manager.settings.postgres.control_schema)
        finally:
            conn.rollback()
