"""Filling one target tenant from the source snapshot, in one transaction.

Three ways, chosen by the target's kind (``FILLS``: ``target_pg.py``,
``target_sqlite.py``):
- PostgreSQL source and target in the same database: server-side
  ``INSERT ... SELECT``, in a transaction that imports the source snapshot;
- SQLite to SQLite: the snapshot copy ATTACHed read-only to the tenant file,
  then ``INSERT ... SELECT``;
- anything else: rows streamed in batches from a worker view of the snapshot.
The transaction commits when the block ends normally and rolls back on any
exception (the operation raises when verification fails).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docex_ops.backends.base import Backend
from docex_ops.backends.contents import TenantContents
from docex_ops.backends.digest import TableDigest
from docex_ops.backends.registry import KindRegistry
from docex_ops.migrate.servers import control_backend
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.source import SourceView, SplitSource

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

STREAM = "stream"
STREAM_BATCH = 5000  # rows per round trip when streaming


class TenantFill(ABC):
    """One tenant's open transaction, with the source snapshot readable beside it."""

    source: SourceView

    @abstractmethod
    def target_rows(self) -> dict[str, int]:
        """Rows per table already in the tenant."""

    @abstractmethod
    def lock_contents(self) -> TenantContents:
        """Hold the tenant's tables against writers until the fill ends, and read what
        every table (DocEX's or not) holds now, committed rows included."""

    @abstractmethod
    def target_columns(self, table: str) -> list[str]: ...

    @abstractmethod
    def copy(self, table: str, columns: list[str], where: str | None,
             baskets: list[str]) -> int:
        """Copy the selected source rows into the tenant's table; rows copied."""

    @abstractmethod
    def target_digest(self, table: str) -> TableDigest: ...

    def target_digests(self) -> dict[str, TableDigest]:
        """Every DocEX table's digest in the tenant."""
        return {table: self.target_digest(table) for table in TABLE_NAMES}

    def source_digest(self, table: str, where: str | None, baskets: list[str]) -> TableDigest:
        return self.source.digest(table, where, baskets)

    def copy_with_digest(self, table: str, columns: list[str], where: str | None,
                         baskets: list[str]) -> tuple[int, TableDigest]:
        """``copy``, and the digest of the source rows it copied (the subset's digest)."""
        rows = self.copy(table, columns, where, baskets)
        return rows, self.source_digest(table, where, baskets)


class TargetKind(ABC):
    """What a split does differently per kind of target."""

    @abstractmethod
    def scratch_dir(self, backend: Backend) -> Path | None:
        """Where a SQLite source's snapshot copy goes (None: the temp folder)."""

    @abstractmethod
    def local_mode(self, source: SplitSource, backend: Backend) -> str | None:
        """The copy mode that reads the source without Python in between, if the source
        is where this target can reach it; None: rows are streamed."""

    @abstractmethod
    def open_local(self, source: SplitSource, backend: Backend, tenant_id: str, token: str
                   ) -> AbstractContextManager[TenantFill]: ...

    @abstractmethod
    def open_stream(self, backend: Backend, tenant_id: str, view: SourceView
                    ) -> AbstractContextManager[TenantFill]: ...


FILLS = KindRegistry[TargetKind]("split target", {
    "postgresql": "docex_ops.split.target_pg:PG_TARGET",
    "sqlite": "docex_ops.split.target_sqlite:SQLITE_TARGET",
})


def target_store(manager: TenantDatabaseManager) -> Backend:
    """The targets' kind and rules (scratch folder, copy mode, the revision references):
    every server of the manager is of one kind, the control server answers for all."""
    return control_backend(manager)


def target_of(manager: TenantDatabaseManager, tenant_id: str) -> Backend:
    """The backend of the server that holds (or will hold) the target tenant."""
    return manager.backend_of(tenant_id)


def scratch_dir(backend: Backend | None) -> Path | None:
    """Where a SQLite source's snapshot copy goes: beside SQLite targets (the storage
    root, same disk), else the temp folder (None)."""
    return None if backend is None else FILLS.for_kind(backend.kind).scratch_dir(backend)


def copy_mode(source: SplitSource, backend: Backend) -> str:
    return FILLS.for_kind(backend.kind).local_mode(source, backend) or STREAM


@contextmanager
def open_fill(source: SplitSource, backend: Backend, tenant_id: str, token: str
              ) -> Iterator[TenantFill]:
    kind = FILLS.for_kind(backend.kind)
    if kind.local_mode(source, backend) is not None:
        with kind.open_local(source, backend, tenant_id, token) as fill:
            yield fill
    else:
        with source.view(token) as view, kind.open_stream(backend, tenant_id, view) as fill:
            yield fill


def same(value: Any) -> Any:
    return value


