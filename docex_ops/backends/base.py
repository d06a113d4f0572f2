"""What every backend offers: the database-specific half of tenant management."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


from docex_ops.backends.catalog import Catalog
from docex_ops.backends.contents import Guard, TenantContents
from docex_ops.config.settings import PoolSettings, Settings


class TenantLockedError(RuntimeError):
    """Another runner holds the tenant (or the whole run) right now."""


class MisroutedError(RuntimeError):
    """A tenant connection is not in its tenant's schema; nothing ran there (pg_routing)."""


# A tenant whose state cannot be read as versioned/unversioned/empty:
# locked: an application lock outlasted the lock timeout; corrupt: not a valid database;
# foreign: named like a tenant but holding another application's tables, none of DocEX's
# (never migrated, adopted, provisioned into or dropped unless named explicitly);
# linked: SQLite, its directory or file is a link (or another tenant's): never opened.
LOCKED, CORRUPT, FOREIGN, LINKED = "locked", "corrupt", "foreign", "linked"
CONDITIONS = (LOCKED, CORRUPT, FOREIGN, LINKED)
# Conditions that keep a command from reading the tenant at all: reported, and exit 1.
UNREADABLE = (LOCKED, CORRUPT, LINKED)


@dataclass(frozen=True, slots=True)  # one per tenant: 10,000 at once
class TenantInfo:
    """One discovered tenant, as the catalog or the file system shows it."""

    tenant_id: str
    location: str             # schema name or file path
    tables: int               # DocEX tables present
    revision: str | None      # from the tenant's own alembic_version; None if unversioned
    size_bytes: int | None = None
    server: str | None = None  # the PostgreSQL server holding it, when several are configured
    # What keeps the tenant from being read as usual, when anything does (CONDITIONS).
    condition: str | None = None
    detail: str | None = None  # why, for a condition
    node: str | None = None    # Citus: the worker node holding its distributed schema

    @property
    def state(self) -> str:
        if self.condition is not None:
            return self.condition
        if self.revision is not None:
            return "versioned"
        return "unversioned" if self.tables else "empty"


@dataclass(frozen=True)
class ServerLimits:
    """How many connections the database server accepts, from its settings."""

    max_connections: int
    superuser_reserved_connections: int
    reserved_connections: int = 0  # PostgreSQL 16+; 0 before

    @property
    def available(self) -> int:
        """Connections an ordinary (non-superuser) role can open."""
        return self.max_connections - self.superuser_reserved_connections - \
            self.reserved_connections


class Backend(ABC):
    """One kind of database: where tenants live and how to reach them."""

    kind: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def location(self, tenant_id: str) -> str:
        """Schema name or file path of a tenant, validated by the tenant rules."""

    @abstractmethod
    def discover(self, with_size: bool = False) -> list[TenantInfo]:
        """Every tenant that exists, versioned or not, sorted by id."""

    def tenant_ids(self) -> list[str]:
        """Every tenant's id, sorted: ``discover`` without the details, where cheaper."""
        return [t.tenant_id for t in self.discover()]

    @abstractmethod
    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        """Current revision per tenant, read set-based (None: no version table)."""

    @abstractmethod
    def exists(self, tenant_id: str) -> bool:
        """Whether the tenant's schema or file exists."""

    @abstractmethod
    def create(self, tenant_id: str, ddl: str) -> bool:
        """Create the tenant and run ``ddl`` in it, in one transaction.

        Returns False (and changes nothing) when the tenant already exists.
        """

    @abstractmethod
    def drop(self, tenant_id: str, guard: Guard | None = None) -> None:
        """Remove the tenant's schema or file, guarded at the moment of the act.

        Inside the dropping transaction, with the tenant locked against writers,
        ``guard`` is shown what it holds (every table's rows, the objects outside
        that depend on it) and refuses by raising; the default refuses any row or
        dependent. Nothing outside the tenant is ever dropped with it. Waits for
        application locks at most ``settings.lock_timeout`` (TenantLockedError).
        """

    @abstractmethod
    def lock_contents(self, conn: Connection, tenant_id: str) -> TenantContents:
        """Inside a ``migration_connection``: lock the tenant's tables against writers
        (readers, such as a safety backup, still get in) and read what it holds."""

    @abstractmethod
    def read_contents(self, tenant_id: str) -> TenantContents | None:
        """What the tenant holds now, without holding it (None: it does not exist);
        TenantLockedError when a lock outlasts ``settings.lock_timeout``."""

    @abstractmethod
    def create_tenant_engine(self, tenant_id: str, pool: PoolSettings) -> Engine:
        """A pooled engine whose every connection is routed to the tenant."""

    @abstractmethod
    def tenant_connection(self, tenant_id: str) -> AbstractContextManager[Connection]:
        """A connection in an open transaction scoped to one tenant, for operator work.

        Committed when the block exits normally, rolled back on an exception.
        """

    @abstractmethod
    def migration_connection(self, tenant_id: str, lock_timeout: float | None = None,
                             statement_timeout: float | None = None
                             ) -> AbstractContextManager[Connection]:
        """One transaction for a tenant's whole migration path.

        The tenant is locked against other runners (TenantLockedError if it is
        taken), waits for application locks at most ``lock_timeout`` seconds,
        and everything is committed at the end or rolled back on error.
        """

    @abstractmethod
    def execute_script(self, conn: Connection, sql: str) -> None:
        """Run pre-rendered SQL (several statements) inside the current transaction."""

    @abstractmethod
    def current_revision(self, conn: Connection) -> str | None:
        """The revision recorded in the tenant the connection is routed to (None: none)."""

    @abstractmethod
    def check_migrated(self, conn: Connection, tenant_id: str, expected: str | None,
                       deep: bool = False) -> None:
        """Before commit: the tenant is at ``expected`` in a version table of its own.

        ``deep`` also proves referential integrity after steps that rebuilt tables.
        """

    @abstractmethod
    def control_engine(self) -> Engine:
        """Engine for docex-ops' own control tables (never inside a tenant)."""

    @abstractmethod
    def catalog(self, tenant_id: str) -> Catalog:
        """The tenant's tables, columns, keys and indexes (see backends.catalog)."""

    def server_limits(self) -> ServerLimits | None:
        """The server's connection limits; None when there is no server (SQLite)."""
        return None

    def dispose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release server-level resources the backend holds."""


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
