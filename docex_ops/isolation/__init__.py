"""Isolation verification: prove no tenant can reach another tenant's data.

``verify_isolation`` discovers the tenants, runs every registered check for the
database kind (``registry.CHECKS``) and returns one ``IsolationReport``; it
never prints. PostgreSQL catalog checks read one consistent snapshot with one
query per check whatever the number of tenants; the routing check opens each
tenant's connection through the TenantDatabaseManager.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from docex_ops.backends.postgres import PostgresBackend
from docex_ops.isolation.context import AuditContext
from docex_ops.isolation.registry import CHECKS, Check, checks_for
from docex_ops.isolation.results import DEPLOYMENT, SEVERITY, CheckResult, Status
from docex_ops.manager import TenantDatabaseManager
from docex_ops.tenancy import validate_all


@dataclass(frozen=True)
class IsolationReport:
    backend: str
    tenants_checked: int
    results: list[CheckResult]
    seconds: float

    def counts(self) -> dict[str, int]:
        found = Counter(r.status for r in self.results)
        return {str(s): found.get(s, 0) for s in Status}

    def worst(self) -> Status:
        return max((r.status for r in self.results), key=SEVERITY.__getitem__, default=Status.PASS)

    def fails_at(self, threshold: Status) -> bool:
        """Whether any result is at least as bad as ``threshold`` (WARN or FAIL)."""
        return SEVERITY[self.worst()] >= SEVERITY[threshold]


def verify_isolation(manager: TenantDatabaseManager, tenant_ids: Sequence[str] = (),
                     allow: Iterable[str] = (), only: Iterable[str] = ()) -> IsolationReport:
    """Run the checks (all, or those named in ``only``) on every tenant, or on ``tenant_ids``.

    Tenants named but not found raise LookupError; bad ids raise TenantIdError
    before anything is read.
    """
    started = time.perf_counter()
    wanted = validate_all(tenant_ids)
    # Locations come from discovery, not from backend.location(): a tenant file
    # that a link moved outside the storage root is a finding, not a usage error.
    tenants = {t.tenant_id: t.location for t in manager.backend.discover()}
    unknown = [t for t in wanted if t not in tenants]
    if unknown:
        raise LookupError(f"tenant(s) {', '.join(map(repr, unknown))} do not exist on "
                          f"{manager.settings.describe()}; see `docex-ops tenants list`")
    checks = select_checks(manager.backend.kind, only)
    ctx = AuditContext(manager, tenants, wanted or sorted(tenants), tuple(allow))
    results: list[CheckResult] = []
    with ExitStack() as stack:
        if isinstance(manager.backend, PostgresBackend) and any(c.needs_catalog for c in checks):
            from docex_ops.backends.postgres_audit import catalog_snapshot

            ctx.catalog = stack.enter_context(catalog_snapshot(manager.backend.admin_engine))
        for check in checks:
            results.extend(check.run(ctx))
    return IsolationReport(manager.backend.kind, len(ctx.subjects), results,
                           time.perf_counter() - started)


def select_checks(kind: str, only: Iterable[str] = ()) -> list[Check]:
    available = checks_for(kind)
    names = list(only)
    unknown = sorted(set(names) - {c.name for c in available})
    if unknown:
        raise LookupError(f"unknown check(s) for {kind}: {', '.join(unknown)}; available: "
                          f"{', '.join(c.name for c in available)}")
    return [c for c in available if not names or c.name in names]


__all__ = ["CHECKS", "DEPLOYMENT", "CheckResult", "IsolationReport", "Status",
           "select_checks", "verify_isolation"]
