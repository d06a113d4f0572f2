"""What a check is given: the tenants, which of them to judge, and the allow-list."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.engine import Connection

from docex_ops.backends.base import Backend
from docex_ops.config import Settings
from docex_ops.manager import TenantDatabaseManager


@dataclass
class AuditContext:
    manager: TenantDatabaseManager
    tenants: dict[str, str]           # every discovered tenant: id -> schema name or file path
    subjects: list[str]               # the tenants being judged (all, or --tenant ...)
    allow: tuple[str, ...] = ()       # extra objects tolerated, "name" or "location.name" globs
    # PostgreSQL: one read-only snapshot that every catalog check reads from.
    catalog: Connection | None = field(default=None, repr=False)
    # The one server being checked, when tenants are on several (tenants: its tenants).
    server_backend: Backend | None = field(default=None, repr=False)

    @property
    def backend(self) -> Backend:
        """The backend of the database being checked (one server of a fleet, or the one)."""
        return self.server_backend or self.manager.backend

    @property
    def settings(self) -> Settings:
        return self.backend.settings

    @cached_property
    def tenant_of(self) -> dict[str, str]:
        """Location (schema name or file path) -> tenant id."""
        return {loc: t for t, loc in self.tenants.items()}

    @cached_property
    def subject_set(self) -> frozenset[str]:
        return frozenset(self.subjects)

    def subject_locations(self) -> list[str]:
        return [self.tenants[t] for t in self.subjects]

    def is_allowed(self, location: str, name: str) -> bool:
        """Whether ``--allow`` tolerates the object ``name`` in ``location``."""
        schema_like = location.rsplit("/", 2)[-2] if "/" in location else location
        candidates = (name, f"{location}.{name}", f"{schema_like}.{name}")
        return any(fnmatch.fnmatchcase(c, pattern) for c in candidates for pattern in self.allow)

    def require_catalog(self) -> Connection:
        if self.catalog is None:
            raise RuntimeError("PostgreSQL checks need the catalog connection")
        return self.catalog
