"""Per-tenant archives in the database's own format: the database-specific half of backups.

The checksums they carry are defined in backends/digest.py."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from docex_ops.backends.contents import Guard
from docex_ops.backends.digest import TableDigest


class ArchiveRefused(RuntimeError):
    """The archive holds something a restore must not create or read (an object outside
    the tenant's schema, or of a kind DocEX's schema does not have); nothing was made."""


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


@dataclass(frozen=True)
class RestoreSpec:
    """What a restore takes from where: the structure is docex-ops' own DDL for the
    manifest's revision, and only table rows come from the archive."""

    archive: Path
    location: str            # the tenant's schema or file at backup time (the manifest's)
    revision: str            # the manifest's revision
    ddl: str                 # docex-ops' DDL for that revision, for this kind of database
    allow_extra: bool = False  # also the tenant's own extra tables (restricted, see docs)
    # A batch archive holds other tenants' schemas too: these are never read, and are
    # the only schemas besides ``location`` its table of contents may name.
    batch_locations: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ArchiveContents:
    """An archive's table of contents once checked: what a restore may load from it."""

    docex_tables: tuple[str, ...]   # DocEX tables whose rows the archive holds
    extra_tables: tuple[str, ...]   # the tenant's own other tables (allow_extra only)
    entries: tuple[str, ...] = ()   # backend-specific: what to load, as the archive names it


@dataclass
class Staging:
    """A restored copy not yet visible as a tenant: a scratch schema or a scratch file."""

    location: str
    extra: dict[str, str] = field(default_factory=dict)


class TenantArchiver(ABC):
    """Dump, restore and checksum tenants for one kind of database."""

    kind: str
    extension: str
    # True when the caller already holds every writer off the tenants (a safety backup
    # inside a destructive act): the dump must not wait for writers itself.
    writers_held: bool = False

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
    def inspect(self, spec: RestoreSpec) -> ArchiveContents:
        """Check the archive's table of contents before anything is created; ArchiveRefused
        names the first entry a restore must not create or read."""

    @abstractmethod
    def staged(self, spec: RestoreSpec, contents: ArchiveContents,
               target_tenant_id: str | None) -> AbstractContextManager[Staging]:
        """Restore one tenant into a held scratch place beside ``target_tenant_id`` (a
        restore check when None): built from ``spec.ddl``, filled with the rows
        ``contents`` names. Held for the block; removed at its end unless promoted."""

    @abstractmethod
    def digest_staging(self, staging: Staging) -> dict[str, TableDigest]:
        """Row count and checksum of every table of a staged copy."""

    @abstractmethod
    def staging_revision(self, staging: Staging) -> str | None:
        """The Alembic revision recorded inside a staged copy."""

    @abstractmethod
    def promote(self, staging: Staging, tenant_id: str, guard: Guard | None = None) -> None:
        """Make the staged copy the tenant ``tenant_id``, replacing it atomically if it exists.

        A tenant that exists at that moment (it may have appeared since the restore
        began) is locked against writers and shown to ``guard`` in the transaction that
        replaces it (default: refuse any row); nothing outside it goes with it.
        TenantChangedError: it changed between the check and the swap (rolled back).
        """

    @abstractmethod
    def discard(self, staging: Staging) -> None:
        """Remove a staged copy; never touches a tenant."""

    @abstractmethod
    def digest_tenant(self, tenant_id: str) -> dict[str, TableDigest]:
        """Row count and checksum of every table of a live tenant."""

    def dispose(self) -> None:  # noqa: B027 - optional hook
        """Release connections the archiver holds."""
