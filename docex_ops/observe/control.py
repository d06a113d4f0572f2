"""Reading docex-ops' control schema/file for a snapshot, per kind (``CONTROL``), on the
plain DBAPI connection discovery already uses: the run and isolation records are a few
grouped queries, and loading SQLAlchemy for them would cost a quarter of a second of
every scrape (``migrate status`` never loads it either). Nothing is created: a control
schema or file that is not there yet reads as no records."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from docex_ops.backends.registry import KindRegistry

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager


class ControlReader(Protocol):
    def has(self, table: str) -> bool:
        """Whether the control table exists."""

    def name(self, table: str) -> str:
        """The table's name to put in SQL (qualified and quoted as the kind needs)."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Every row of a read (no parameters: the SQL holds only names and numbers)."""


ControlOpener = Callable[["TenantDatabaseManager"], AbstractContextManager[ControlReader]]

CONTROL = KindRegistry[ControlOpener]("control reads", {
    "postgresql": "docex_ops.observe.pg_control:open_control",
    "sqlite": "docex_ops.observe.sqlite_control:open_control",
})


def open_control(manager: TenantDatabaseManager) -> AbstractContextManager[ControlReader]:
    return CONTROL.for_kind(manager.backend.kind)(manager)


def stored_time(value: Any) -> datetime:
    """A DateTime column as a naive UTC datetime (SQLite hands back its text)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime), value
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
