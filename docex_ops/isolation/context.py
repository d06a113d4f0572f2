"""What a check is given: the tenants, which of them to judge, and the allow-list."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar, cast

from sqlalchemy.engine import Connection

from docex_ops.backends.base import Backend
from docex_ops.config.settings import Settings
from docex_ops.isolation.results import CheckResult, waived
from docex_ops.manager.tenant_manager import TenantDatabaseManager

T = TypeVar("T")

# Tenants the per-tenant checks (live routing, SQLite file reads) judge at once: -j.
DEFAULT_JOBS = 8


@dataclass(frozen=True)
class _Judged:
    """One tenant's findings, in the shape the executors count (never a failure:
    the findings themselves say FAIL)."""

    tenant_id: str
    results: list[CheckResult]
    ok: bool = True


@dataclass
class IsolationContext:
    manager: TenantDatabaseManager
    tenants: dict[str, str]           # every discovered tenant: id -> schema name or file path
    subjects: list[str]               # the tenants being judged (all, or --tenant ...)
    allow: tuple[str, ...] = ()       # extra objects tolerated, "name" or "location.name" globs
    # PostgreSQL: one read-only snapshot that every catalog check reads from.
    catalog: Connection | None = field(default=None, repr=False)
    # The one server being checked, when tenants are on several (tenants: its tenants).
    server_backend: Backend | None = field(default=None, repr=False)
    _facts: dict[str, object] = field(default_factory=dict, repr=False)
    jobs: int = DEFAULT_JOBS          # -j: per-tenant checks judge this many tenants at once

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
        return self.allowance(name, f"{location}.{name}", f"{schema_like}.{name}") is not None

    def allowance(self, *names: str) -> str | None:
        """The first ``--allow`` pattern that matches one of ``names``, else None."""
        return next((pattern for pattern in self.allow
                     if any(fnmatch.fnmatchcase(n, pattern) for n in names)), None)

    def judged(self, result: CheckResult, *names: str) -> CheckResult:
        """``result``, or its accepted PASS row when ``--allow`` names one of ``names``."""
        pattern = self.allowance(*names)
        return result if pattern is None else waived(result, pattern)

    @property
    def operator_roles(self) -> frozenset[str]:
        """isolation.allowed_roles of the server checked, its configured user included."""
        return self.settings.isolation.operator_roles(self.settings.postgres.user)

    def fact(self, key: str, read: Callable[[], T]) -> T:
        """``read()`` once per snapshot: checks that share a catalog fact share one query."""
        if key not in self._facts:
            self._facts[key] = read()
        return cast(T, self._facts[key])

    def each_subject(self, judge: Callable[[str], list[CheckResult]]) -> list[CheckResult]:
        """``judge(tenant)`` for every subject, ``jobs`` at once (each on connections or
        files of its own), the findings in subject order whatever finished first."""
        from docex_ops.executor import FailurePolicy, make_executor

        def one(tenant: str) -> _Judged:
            return _Judged(tenant, judge(tenant))
        judged = make_executor(one, self.jobs, FailurePolicy(continue_on_error=True))
        return [r for j in judged.run(self.subjects) for r in j.results]

    def require_catalog(self) -> Connection:
        if self.catalog is None:
            raise RuntimeError("PostgreSQL checks need the catalog connection")
        return self.catalog
