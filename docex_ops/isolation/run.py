"""Isolation verification: prove no tenant can reach another tenant's data.

``verify_isolation`` discovers the tenants, runs every registered check for the
database kind (``registry.CHECKS``) and returns one ``IsolationReport``; it
never prints. PostgreSQL catalog checks read one consistent snapshot with one
query (or a fixed few) per check whatever the number of tenants; the routing
check opens each tenant's connection through the TenantDatabaseManager, and
the probe acts as a sample of tenant roles on connections of its own, in
transactions it rolls back. docs/isolation.md is the threat model.

With tenants on several servers the checks run per server (each server's
tenants against that server's catalog and settings, results carrying the
server), and every placement problem the fleet's reconciliation reports is a
finding of its own (``placement``), whatever checks were selected.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace

from docex_ops.backends.base import Backend
from docex_ops.executor import ProgressFn, ProgressTick
from docex_ops.isolation import placement
from docex_ops.isolation.context import DEFAULT_JOBS, IsolationContext
from docex_ops.isolation.registry import CATALOG_SNAPSHOTS, CHECKS, Check, checks_for
from docex_ops.isolation.results import DEPLOYMENT, SEVERITY, CheckResult, Status
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import validate_all


@dataclass(frozen=True)
class IsolationReport:
    backend: str
    tenants_checked: int
    results: list[CheckResult]
    seconds: float
    servers: list[str] = field(default_factory=list)  # several servers: each, in order

    def counts(self) -> dict[str, int]:
        found = Counter(r.status for r in self.results)
        return {str(s): found.get(s, 0) for s in Status}

    def per_check(self) -> list[dict[str, object]]:
        """One line per check (per server, in order of appearance): its PASS, WARN, FAIL."""
        found: dict[tuple[str | None, str], Counter[Status]] = {}
        for r in self.results:
            found.setdefault((r.server, r.check), Counter())[r.status] += 1
        return [({"server": server} if server else {}) | {"check": check}
                | {str(s): c.get(s, 0) for s in Status}
                for (server, check), c in found.items()]

    def worst(self) -> Status:
        return max((r.status for r in self.results), key=SEVERITY.__getitem__, default=Status.PASS)

    def fails_at(self, threshold: Status) -> bool:
        """Whether any result is at least as bad as ``threshold`` (WARN or FAIL)."""
        return SEVERITY[self.worst()] >= SEVERITY[threshold]


def verify_isolation(manager: TenantDatabaseManager, tenant_ids: Sequence[str] = (),
                     allow: Iterable[str] = (), only: Iterable[str] = (),
                     exclude: Iterable[str] = (), progress: ProgressFn | None = None,
                     jobs: int = DEFAULT_JOBS) -> IsolationReport:
    """Run the checks (all, or those named in ``only``) on every tenant, or on ``tenant_ids``,
    never judging ``exclude`` (those still count as other tenants). ``progress`` hears
    of each check as it ends (one server; a fleet's servers run at once, so it is not
    told there), named in its ``tenant`` field.

    ``jobs``: tenants the per-tenant checks judge at once, on each server.
    Tenants named but not found raise LookupError; bad ids raise TenantIdError
    before anything is read.
    """
    started = time.perf_counter()
    wanted = validate_all(tenant_ids)
    excluded = set(validate_all(exclude))
    if excluded:
        judged = wanted or sorted(t.tenant_id for t in manager.discover().tenants)
        wanted = [t for t in judged if t not in excluded]
        if not wanted:
            raise LookupError("every tenant is excluded: nothing to judge")
    backend = manager.backend
    several = len(manager.servers) > 1  # a directory to check, and results naming servers
    checks = select_checks(backend.kind, only, fleet=several, shape=manager.topology.shape)
    if several:
        results, checked = _verify_fleet(manager, wanted, tuple(allow), checks, jobs)
        return IsolationReport(backend.kind, checked, results, time.perf_counter() - started,
                               list(manager.servers))
    # Locations come from discovery, not from backend.location(): a tenant file
    # that a link moved outside the storage root is a finding, not a usage error.
    tenants = {t.tenant_id: t.location for t in backend.discover()}
    _refuse_unknown(wanted, tenants, manager.settings.describe())
    ctx = IsolationContext(manager, tenants, wanted or sorted(tenants), tuple(allow), jobs=jobs)
    return IsolationReport(backend.kind, len(ctx.subjects), run_checks(ctx, checks, progress),
                           time.perf_counter() - started)


def run_checks(ctx: IsolationContext, checks: list[Check],
               progress: ProgressFn | None = None) -> list[CheckResult]:
    """The checks against one database (one server), in registry order: catalog checks in
    one snapshot, one after the other (they share its connection), while the checks that
    need no catalog (live routing, on tenant connections of its own) run alongside."""
    by_check: dict[str, list[CheckResult]] = {}

    def done(name: str, results: list[CheckResult]) -> None:
        by_check[name] = results
        if progress is not None:
            progress(ProgressTick(len(by_check), len(checks), name,
                                  all(r.status != Status.FAIL for r in results)))

    if progress is not None:
        progress(ProgressTick(0, len(checks)))
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as alongside:
        kind = ctx.backend.kind
        if kind in CATALOG_SNAPSHOTS.kinds and any(c.needs_catalog for c in checks):
            ctx.catalog = stack.enter_context(CATALOG_SNAPSHOTS.for_kind(kind)(ctx.backend))
        running = {c.name: alongside.submit(c.run, ctx) for c in checks
                   if not c.needs_catalog and ctx.catalog is not None}
        for check in checks:
            if check.name not in running:
                done(check.name, check.run(ctx))
        for name, future in running.items():
            done(name, future.result())
    return [r for check in checks for r in by_check[check.name]]


def _verify_fleet(manager: TenantDatabaseManager, wanted: list[str], allow: tuple[str, ...],
                  checks: list[Check], jobs: int = DEFAULT_JOBS
                  ) -> tuple[list[CheckResult], int]:
    """Per server (all at once, reported in configured order): its placement findings,
    then the checks of its tenants against it. A server none of ``wanted`` is on is
    skipped."""
    view = manager.discover()
    placed = {t.tenant_id: t for t in view.tenants}
    troubled = {p.tenant_id: p for p in view.problems}
    _refuse_unknown(wanted, placed.keys() | troubled.keys(), "any server of the fleet")
    location = {t: manager.backend.location(t) for t in troubled}
    findings = placement.placement_findings(view.problems, location, wanted)
    control = manager.topology.control_server

    def on_server(name: str, server: Backend, _: list[str]) -> list[CheckResult]:
        here = {t.tenant_id: t.location for t in view.tenants if t.server == name}
        subjects = sorted(t for t in here if not wanted or t in wanted)
        mine = [r for r in findings
                if placement.server_of_problem(troubled[r.tenant], control) == name]
        if wanted and not subjects and not mine:
            return []
        # Other tenants include stray copies on this server: a reference into one counts.
        strays = {t: location[t] for t, p in troubled.items() if name in p.servers}
        ctx = IsolationContext(manager, strays | here, subjects, allow, server_backend=server,
                               jobs=jobs)  # per server: -j at once on each
        checked = run_checks(ctx, checks) if checks and (subjects or not wanted) else []
        return [replace(r, server=name) for r in mine + checked]

    results = [r for part in manager.for_each_server(on_server).values() for r in part]
    judged = {t for t in placed if not wanted or t in wanted} | {r.tenant for r in findings}
    return results, len(judged)


def _refuse_unknown(wanted: Sequence[str], known: Iterable[str], where: str) -> None:
    known = set(known)
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise LookupError(f"tenant(s) {', '.join(map(repr, unknown))} do not exist on "
                          f"{where}; see `docex-ops tenants list`")


def select_checks(kind: str, only: Iterable[str] = (), fleet: bool = False,
                  shape: str | None = None) -> list[Check]:
    """The checks to run, all or those named; on a fleet ``placement`` may be named too
    (it always runs there); checks of one topology (Citus's) only on it (``shape``)."""
    available = checks_for(kind, shape)
    names = list(only)
    valid = [c.name for c in available] + ([placement.NAME] if fleet else [])
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise LookupError(f"unknown check(s) for {kind}: {', '.join(unknown)}; available: "
                          f"{', '.join(dict.fromkeys(valid))}")
    return [c for c in available if not names or c.name in names]


__all__ = ["CHECKS", "DEPLOYMENT", "CheckResult", "IsolationReport", "Status",
           "select_checks", "verify_isolation"]
