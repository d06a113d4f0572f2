"""Per-tenant archives in the database's own format: the database-specific half of backups.

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

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path


class ArchiveToolError(RuntimeError):
    """A database tool (pg_dump, pg_restore, psql) is missing, too old or failed."""


@dataclass(frozen=True)
class TableDigest:
    rows: int
    checksum: str


@dataclass(frozen=True)
class TenantSnapshot:
    """What one tenant looked like in the archive: taken in the archive's own snapshot."""

    tenant_id: str
    location: str
    revision: str | None
    tables: dict[str, TableDigest]


@dataclass(frozen=True)
class DumpResult:
    """One archive file holding one or more tenants (PostgreSQL batches schemas)."""

    archive: Path
    tenants: list[TenantSnapshot]
    tool_version: str
    server_version: str


@dataclass
class Staging:
    """A restored copy not yet visible as a tenant: a scratch schema or a scratch file."""

    location: str
    extra: dict[str, str] = field(default_factory=dict)


class StagingHolds:
    """The holds (``docex_ops.scratch``) on staged copies, kept from staging until the
    copy is promoted or discarded, so that `docex-ops cleanup` never takes one."""

    def __init__(self) -> None:
        self._holds: dict[str, ExitStack] = {}

    def keep(self, staging: Staging, hold: ExitStack) -> None:
        self._holds[staging.location] = hold

    def release(self, staging: Staging) -> None:
        hold = self._holds.pop(staging.location, None)
        if hold is not None:
            hold.close()

    def release_all(self) -> None:
        for hold in self._holds.values():
            hold.close()
        self._holds.clear()


class TenantArchiver(ABC):
    """Dump, restore and checksum tenants for one kind of database."""

    kind: str
    extension: str

    @abstractmethod
    def batch_size(self, jobs: int) -> int:
        """How many tenants one archive may hold (1: one archive per tenant)."""

    def batches(self, tenant_ids: list[str], size: int) -> Iterator[list[str]]:
        """Split tenants into archives of at most ``size`` (a fleet: never across servers)."""
        for start in range(0, len(tenant_ids), size):
            yield tenant_ids[start:start + size]

    @abstractmethod
    def dump(self, tenant_ids: list[str], archive: Path) -> DumpResult:
        """Write ``archive`` holding ``tenant_ids``, with their checksums in the same snapshot."""

    @abstractmethod
    def restore_to_staging(self, archive: Path, source_location: str,
                           target_tenant_id: str | None) -> Staging:
        """Restore one tenant of ``archive`` into a scratch place beside ``target_tenant_id``
        (or anywhere when None: a restore check)."""

    @abstractmethod
    def digest_staging(self, staging: Staging) -> dict[str, TableDigest]:
        """Row count and checksum of every table of a staged copy."""

    @abstractmethod
    def staging_revision(self, staging: Staging) -> str | None:
        """The Alembic revision recorded inside a staged copy."""

    @abstractmethod
    def promote(self, staging: Staging, tenant_id: str) -> None:
        """Make the staged copy the tenant ``tenant_id``, replacing it atomically if it exists."""

    @abstractmethod
    def discard(self, staging: Staging) -> None:
        """Remove a staged copy; never touches a tenant."""

    @abstractmethod
    def digest_tenant(self, tenant_id: str) -> dict[str, TableDigest]:
        """Row count and checksum of every table of a live tenant."""

    def dispose(self) -> None:  # noqa: B027 - optional hook
        """Release connections the archiver holds."""
