"""Run a plan across tenants: runner lock, canary, workers, failure policy, run record."""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

from docex_ops import audit_trail
from docex_ops.backends.base import TenantInfo
from docex_ops.executor import FailurePolicy, ProgressFn, make_executor, shifted
from docex_ops.migrate.lint_gate import FindingsFn, gate
from docex_ops.migrate.plan import Plan, Selection, make_plan, plan_steps, select_tenants
from docex_ops.migrate.retry import migrate_with_retries
from docex_ops.migrate.runner_lock import runner_lock
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.migrate.servers import (
    control_backend,
    place_of,
    places_of,
    servers_of,
    spread_over_servers,
)
from docex_ops.migrate.tenant import (
    StepOptions,
    TenantResult,
    TenantStep,
    describe_error,
)
from docex_ops.migrate.waves import failure_rate, order_steps, split_waves

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.runs import RunStore, RunSummary


def default_actor() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except OSError:  # pragma: no cover - no passwd entry in some containers
        return "unknown"


@dataclass(frozen=True)
class RunOptions:
    step: StepOptions = field(default_factory=StepOptions)
    jobs: int = 1
    continue_on_error: bool = False
    max_failures: int | None = None
    canary: int = 0
    wait: bool = False
    actor: str = field(default_factory=default_actor)
    waves: tuple[str, ...] = ()       # cumulative counts / percentages (migrate/waves.py)
    max_failure_rate: float = 0.0     # of the last wave, above which the next is not started
    wave_pause: float = 0.0           # seconds between waves, for an operator to look
    order: str | None = None          # size | name | a tenants file
    allow: tuple[str, ...] = ()       # lint rules waived for this run (migrate/lint_gate.py)

    @property
    def policy(self) -> FailurePolicy:
        return FailurePolicy(self.continue_on_error, self.max_failures)


@dataclass
class RunReport:
    action: str
    target: str
    run_id: str | None = None
    results: list[TenantResult] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    already: int = 0
    blocked: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # foreign: left alone
    seconds: float = 0.0
    servers: dict[str, str] | None = None  # tenant -> server; None with one server
    waves: dict[str, int] | None = None  # tenant -> its wave (1, 2, ...); None: no waves

    @property
    def failed(self) -> list[TenantResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started and not self.blocked


def run_plan(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
             options: RunOptions, progress: ProgressFn | None = None,
             run_id: str | None = None, on_lint: FindingsFn | None = None) -> RunReport:
    """Execute a plan. Nothing to do means no lock, no record: a no-op is one catalog read.

    An upgrade is linted first (``on_lint`` is shown the findings); an error-level finding
    not waived (``options.allow``) raises LintRefusal before any tenant is touched.
    ``options.jobs`` tenants at once on each server (see migrate/servers.py)."""
    started = time.perf_counter()
    gate(manager, scripts, plan, options.step, options.allow, on_lint)
    report = RunReport(plan.action, plan.target, run_id, already=len(plan.already),
                       blocked=[(info.tenant_id, why) for info, why in plan.blocked],
                       skipped=[(info.tenant_id, why) for info, why in plan.skipped])
    report.servers = plan.servers
    if not plan.steps:
        report.seconds = time.perf_counter() - started
        return report
    options = replace(options, jobs=spread_over_servers(manager, plan, options.jobs))
    control = control_backend(manager)
    with runner_lock(control, options.wait):
        store = run_store(manager)
        report.run_id = store.start(plan.action, plan.target, options.actor, plan.steps,
                                    _recorded_options(options), run_id)
        task = _recording_task(manager, scripts, options.step, store, report.run_id, plan)
        _run_waves(manager, task, plan, options, report, progress)
        store.finish(report.run_id, "done" if report.ok else "failed")
    report.seconds = time.perf_counter() - started
    return report


def _run_waves(manager: TenantDatabaseManager, task: Callable[[TenantStep], TenantResult],
               plan: Plan, options: RunOptions, report: RunReport,
               progress: ProgressFn | None) -> None:
    """The canary, then each wave; a wave whose failure rate is above the limit (the
    canary: any failure) leaves the later waves not started, for ``migrate resume``."""
    steps = order_steps(manager, plan.steps, options.order)
    waves = split_waves(steps, options.waves, options.canary)
    if options.waves:
        report.waves = {s.tenant_id: i for i, wave in enumerate(waves, 1) for s in wave}
    for index, wave in enumerate(waves):
        canary = options.canary and index == 0
        policy = FailurePolicy(max_failures=1) if canary else options.policy
        # One count over every wave (the canary included): the total is the plan's.
        ran = make_executor(task, options.jobs, policy,
                            shifted(progress, len(report.results), len(steps))).run(wave)
        report.results += ran
        failed = sum(not r.ok for r in ran)
        stop = (failed > 0 if canary or not options.waves
                else failure_rate(failed, len(ran)) > options.max_failure_rate)
        if stop or index == len(waves) - 1:
            report.not_started = [s.tenant_id for s in wave[len(ran):]]
            report.not_started += [s.tenant_id for later in waves[index + 1:] for s in later]
            return
        if options.wave_pause:
            time.sleep(options.wave_pause)


def migrate(manager: TenantDatabaseManager, scripts: MigrationScripts, selection: Selection,
            action: str, target: str, options: RunOptions,
            progress: ProgressFn | None = None) -> RunReport:
    """Select, plan and run: ``docex-ops migrate upgrade|downgrade|stamp``."""
    return run_plan(manager, scripts, make_plan(manager, scripts, selection, action, target),
                    options, progress)


def upgrade_tenants(manager: TenantDatabaseManager, tenant_ids: list[str],
                    target: str = "head", scripts: MigrationScripts | None = None,
                    options: RunOptions | None = None) -> RunReport:
    """Upgrade named tenants (e.g. one just restored or split); raises if any fails."""
    report = migrate(manager, scripts or MigrationScripts(),
                     Selection(include=tuple(tenant_ids)), "upgrade", target,
                     options or RunOptions())
    if not report.ok:
        problems = [f"{r.tenant_id}: {r.error}" for r in report.failed]
        problems += [f"{t}: {why}" for t, why in report.blocked]
        raise RuntimeError("upgrade failed: " + "; ".join(problems or report.not_started))
    return report


def recorded_runs(manager: TenantDatabaseManager, limit: int = 20) -> list[RunSummary]:
    """The recorded migration runs, newest first."""
    return run_store(manager).list(limit)


@dataclass(frozen=True)
class Resumption:
    """What is left of a recorded run: its plan and the tenants it covers."""

    run_id: str
    pending: tuple[str, ...]    # the run's tenants that failed or never started
    plan: Plan
    tenants: list[TenantInfo]
    allow: tuple[str, ...] = ()  # the lint rules the run was started with waived


def plan_resumption(manager: TenantDatabaseManager, scripts: MigrationScripts,
                    run_id: str) -> Resumption:
    """The plan that retries a run's tenants that failed or never started, towards the
    run's target (empty when none is left)."""
    store = run_store(manager)
    run, tenants = store.get(run_id)
    todo = tuple(t["tenant_id"] for t in tenants if t["status"] in ("pending", "failed"))
    found = select_tenants(manager, Selection(include=todo)).tenants if todo else []
    plan = plan_steps(scripts, found, run["action"], run["target"])
    plan.servers = servers_of(manager, found)
    plan.places = places_of(manager, found)
    allow = tuple((run.get("options") or {}).get("allow") or ())
    return Resumption(run["run_id"], todo, plan, found, allow)


def resume(manager: TenantDatabaseManager, scripts: MigrationScripts, run_id: str,
           options: RunOptions, progress: ProgressFn | None = None,
           on_lint: FindingsFn | None = None) -> RunReport:
    """Retry the tenants of a run that failed or never started, towards the run's target."""
    return run_resumption(manager, scripts, plan_resumption(manager, scripts, run_id),
                          options, progress, on_lint)


def run_resumption(manager: TenantDatabaseManager, scripts: MigrationScripts,
                   left: Resumption, options: RunOptions,
                   progress: ProgressFn | None = None,
                   on_lint: FindingsFn | None = None) -> RunReport:
    """Run what ``plan_resumption`` found, recorded under the original run, linted as
    the run was (its waivers still hold)."""
    if not left.pending:
        return RunReport(left.plan.action, left.plan.target, left.run_id)
    options = replace(options, allow=tuple(dict.fromkeys((*left.allow, *options.allow))))
    return run_plan(manager, scripts, left.plan, options, progress, run_id=left.run_id,
                    on_lint=on_lint)


def _recording_task(manager: TenantDatabaseManager,
                    scripts: MigrationScripts, step_options: StepOptions, store: RunStore,
                    run_id: str, plan: Plan) -> Callable[[TenantStep], TenantResult]:
    def task(step: TenantStep) -> TenantResult:
        result = _migrate_on_its_server(manager, scripts, step, step_options,
                                        place_of(plan, step.tenant_id))
        record_result(store, run_id, step, result)
        return result
    return task


def record_result(store: RunStore, run_id: str, step: TenantStep, result: TenantResult,
                  actor: str | None = None) -> None:
    """One tenant's outcome in its run record and, unless nothing ran, the audit trail
    (docex-ops' runner and plain ``alembic`` alike; ``actor``: the audit line's operator
    when not the process')."""
    store.record(run_id, result)
    if result.status != "skipped":
        audit_trail.record("tenant.migrate", step.tenant_id, step.target or "base",
                           audit_trail.OK if result.ok else audit_trail.FAILED,
                           {"action": step.action, "from": result.from_rev, "run_id": run_id,
                            "path": result.path, "error": result.error,
                            "attempts": result.attempts,
                            "safety_backup": result.safety_backup}, actor=actor)


def _migrate_on_its_server(manager: TenantDatabaseManager,
                           scripts: MigrationScripts, step: TenantStep,
                           options: StepOptions, place: str | None) -> TenantResult:
    try:
        server = manager.server_of(step.tenant_id)
    except Exception as exc:  # noqa: BLE001 - no usable place (e.g. frozen): this tenant fails
        return TenantResult(step.tenant_id, step.current, step.current, "failed", 0.0,
                            error=describe_error(exc))
    with manager.topology.slot_on(place or server):
        return migrate_with_retries(manager.servers[server], scripts, step, options)


def run_store(manager: TenantDatabaseManager) -> RunStore:
    from docex_ops.migrate.runs import RunStore  # SQLAlchemy: only once a run is recorded

    return RunStore(control_backend(manager).control_engine())


def _recorded_options(options: RunOptions) -> dict[str, object]:
    recorded = asdict(options)
    recorded.pop("actor", None)
    return recorded
