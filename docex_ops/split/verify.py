"""``split verify``: re-check finished tenants against the source, in a fresh snapshot.

Every tenant's table equals its subset of the source (count and checksum);
the subsets are disjoint by construction (each basket has one tenant), so
this proves every source row is in exactly one tenant, global tables in all,
and the left-out rows (skipped, dropped edges) are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docex_ops.backends.base import Backend
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.copy import mismatches
from docex_ops.split.mapping import BasketMapping
from docex_ops.split.plan import PlanOptions, SplitPlan, make_plan
from docex_ops.split.rules import GLOBAL_TABLES
from docex_ops.split.source import SplitSource
from docex_ops.split.target import open_fill, scratch_dir, target_of, target_store

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager


class _ReadOnly(Exception):
    """Raised to roll the verification transaction back: verify writes nothing."""


@dataclass(frozen=True)
class TenantCheck:
    tenant_id: str
    rows: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    plan: SplitPlan
    tenants: list[TenantCheck] = field(default_factory=list)
    coverage: list[str] = field(default_factory=list)   # rows not accounted for

    @property
    def ok(self) -> bool:
        return self.plan.ok and not self.coverage and all(t.ok for t in self.tenants)


def verify_split(source: SplitSource, mapping: BasketMapping, options: PlanOptions,
                 manager: TenantDatabaseManager) -> VerifyReport:
    store = target_store(manager)
    with source.snapshot(scratch_dir(store)) as (view, token):
        plan = make_plan(view, mapping, options, store, view.revision())
        plan.source = source.spec.describe()
        report = VerifyReport(plan, coverage=coverage_problems(plan))
        if not plan.ok:
            return report
        for tenant_id in plan.tenants:
            report.tenants.append(_check(source, target_of(manager, tenant_id), plan,
                                         tenant_id, token))
    return report


def coverage_problems(plan: SplitPlan) -> list[str]:
    """Per table: tenants' rows + left-out rows == source rows (global: each tenant all)."""
    problems = []
    for table in TABLE_NAMES:
        total = plan.source_counts[table]
        if table in GLOBAL_TABLES:
            short = [t for t, c in plan.counts.items() if c[table] != total]
            if short:
                problems.append(f"{table}: tenants {', '.join(short)} would not get all rows")
            continue
        if table == "route_operations":
            continue  # rows without a document are in every tenant by design
        placed = sum(c[table] for c in plan.counts.values()) + plan.skipped.get(table, 0)
        if placed != total:
            problems.append(f"{table}: {placed} rows placed or left out, {total} in the source")
    return problems


def _check(source: SplitSource, backend: Backend, plan: SplitPlan, tenant_id: str,
           token: str) -> TenantCheck:
    if not backend.exists(tenant_id):
        return TenantCheck(tenant_id, 0, [f"tenant {tenant_id!r} does not exist"])
    found: list[str] = []
    rows = 0
    try:
        with open_fill(source, backend, tenant_id, token) as fill:
            rows = sum(fill.target_rows().values())
            found = mismatches(fill, plan, tenant_id)
            raise _ReadOnly
    except _ReadOnly:
        pass
    except Exception as exc:  # noqa: BLE001 - a tenant that cannot be read fails the check
        found = [f"tenant {tenant_id!r} cannot be read: {exc}"]
    return TenantCheck(tenant_id, rows, [f"tenant {tenant_id!r}: {p}" for p in found])
