"""``split run``: fill every target tenant from one source snapshot, verified per tenant.

Per tenant: provisioned empty at the source's revision (create, then the
Alembic path to that revision), then one transaction that copies its rows
(ids kept) and compares each table's count and checksum with the source
subset before committing; any mismatch rolls the tenant back. A tenant that
already holds exactly its rows is reported ``complete`` and left alone (a
rerun after a crash); one that holds anything else is refused, untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docex_ops import audit_trail
from docex_ops.backends import Backend
from docex_ops.backends.contents import GuardRefusal
from docex_ops.backends.digest import TableDigest
from docex_ops.backends.guards import ActGuard
from docex_ops.backends.sqlite_paths import TenantFileError
from docex_ops.executor import FailurePolicy, ProgressFn, make_executor
from docex_ops.migrate import MigrationScripts, StepOptions, TenantStep, migrate_tenant
from docex_ops.migrate.runner import upgrade_tenants
from docex_ops.migrate.scripts import MIGRATIONS_DIR
from docex_ops.schema.ddl import head_ddl, version_table_ddl
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.mapping import BasketMapping
from docex_ops.split.plan import PlanOptions, SplitPlan, make_plan
from docex_ops.split.revision import source_revision
from docex_ops.split.rules import COPY_ORDER, subset_where
from docex_ops.split.source import SplitSource
from docex_ops.split.target import (
    TenantFill,
    copy_mode,
    open_fill,
    scratch_dir,
    target_of,
    target_store,
)

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

COPIED, COMPLETE, FAILED, REFUSED = "copied", "complete", "failed", "refused"


class SplitRefused(GuardRefusal):
    """The tenant holds other data or another structure; nothing was written."""


@dataclass(frozen=True)
class TenantSplit:
    tenant_id: str
    location: str
    status: str        # copied | complete | failed | refused | would-copy | would-check
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status not in (FAILED, REFUSED)


@dataclass
class SplitReport:
    plan: SplitPlan
    mode: str
    dry_run: bool = False
    results: list[TenantSplit] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    upgraded: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.plan.ok and not self.not_started and all(r.ok for r in self.results)


@dataclass(frozen=True)
class RunSettings:
    jobs: int = 1
    dry_run: bool = False
    upgrade: bool = False
    continue_on_error: bool = False
    revision: str | None = None   # --source-revision
    tenants: tuple[str, ...] = ()  # --tenant/--tenants-file: only these mapped tenants
    exclude: tuple[str, ...] = ()  # --exclude: never these


def run_split(source: SplitSource, mapping: BasketMapping, options: PlanOptions,
              manager: TenantDatabaseManager, run: RunSettings,
              scripts: MigrationScripts | None = None,
              progress: ProgressFn | None = None) -> SplitReport:
    started = time.perf_counter()
    scripts = scripts or MigrationScripts()
    store = target_store(manager)
    with source.snapshot(scratch_dir(store)) as (view, token):
        revision = source_revision(view, source.spec, store, scripts, run.revision)
        plan = make_plan(view, mapping, options, store, revision)
        plan.source = source.spec.describe()
        report = SplitReport(plan, copy_mode(source, store), run.dry_run)
        if not plan.ok:
            return report
        tenants = selected_tenants(list(plan.tenants), run)
        if run.dry_run:
            report.results = [_would(target_of(manager, t), t, plan) for t in tenants]
            return report

        def task(tenant_id: str) -> TenantSplit:
            return split_tenant(source, target_of(manager, tenant_id), scripts, plan,
                                tenant_id, token)

        policy = FailurePolicy(continue_on_error=run.continue_on_error)
        report.results = make_executor(task, run.jobs, policy, progress).run(tenants)
        report.not_started = tenants[len(report.results):]
    if run.upgrade and report.ok:
        upgrade_tenants(manager, tenants, scripts=scripts)
        report.upgraded = tenants
    report.seconds = time.perf_counter() - started
    return report


def selected_tenants(mapped: list[str], run: RunSettings) -> list[str]:
    """The mapped tenants the run fills: all, or those named, less the excluded (ids
    checked by the CLI). A name the mapping does not give a tenant is refused (LookupError),
    before anything is written."""
    unknown = [t for t in dict.fromkeys(run.tenants + run.exclude) if t not in mapped]
    if unknown:
        raise LookupError(f"tenant(s) {', '.join(unknown)} not in the split's mapping "
                          f"(it fills: {', '.join(mapped) or 'none'}); nothing was written")
    wanted = set(run.tenants or mapped) - set(run.exclude)
    return [t for t in mapped if t in wanted]


def _would(backend: Backend, tenant_id: str, plan: SplitPlan) -> TenantSplit:
    """The run's checks of an existing target, read without its lock: a tenant holding
    rows DocEX's tables do not have, or tables at another revision than the source's, is
    refused as the run refuses it. One holding DocEX rows is compared with its subset
    by the run (complete when equal, refused otherwise): ``would-check``."""
    location = backend.location(tenant_id)
    try:
        contents = backend.read_contents(tenant_id)
        if contents is None:
            return TenantSplit(tenant_id, location, "would-copy")
        _foreign_rows_guard(tenant_id)(contents)
        if any(contents.rows.get(t, 0) for t in TABLE_NAMES):
            return TenantSplit(tenant_id, location, "would-check")
        if contents.rows:  # tables, no rows: filled only at the source's revision
            _refuse_other_revision(tenant_id, backend.read_revisions([tenant_id])[tenant_id],
                                   plan.revision)
    except (GuardRefusal, TenantFileError) as exc:
        return TenantSplit(tenant_id, location, REFUSED, 0, 0.0, str(exc))
    return TenantSplit(tenant_id, location, "would-copy")


def _foreign_rows_guard(tenant_id: str) -> ActGuard:
    """Rows in a table DocEX does not have (or a schema that is not DocEX's at all) mean
    the tenant is someone's already."""
    return ActGuard(tenant_id, "the split writing into it",
                    matters=lambda t: t not in TABLE_NAMES,
                    harm="would mix the source's rows with them",
                    hint="a split fills only tenants of its own: drop it or map its baskets "
                         "to another tenant")


def _refuse_other_revision(tenant_id: str, current: str | None, wanted: str | None) -> None:
    if current != wanted:
        raise SplitRefused(f"tenant {tenant_id!r} exists at revision {current or 'none'}, the "
                           f"source is at {wanted}; drop the empty tenant and rerun")


def split_tenant(source: SplitSource, backend: Backend, scripts: MigrationScripts,
                 plan: SplitPlan, tenant_id: str, token: str) -> TenantSplit:
    """One tenant, never raising: the outcome (and the audit line) says what happened."""
    started = time.perf_counter()
    location = backend.location(tenant_id)
    try:
        current = prepare_target(backend, scripts, tenant_id, plan.revision)
        with open_fill(source, backend, tenant_id, token) as fill:
            status, rows = _fill(fill, plan, tenant_id, current)
    except (GuardRefusal, TenantFileError) as exc:  # a link: refused before any open
        audit_trail.record("tenant.split", tenant_id, location, audit_trail.REFUSED,
                           {"error": str(exc)})
        return TenantSplit(tenant_id, location, REFUSED, 0, time.perf_counter() - started,
                           str(exc))
    except Exception as exc:  # noqa: BLE001 - reported per tenant, the others go on
        error = f"tenant {tenant_id!r}: {_describe(exc)}; rolled back"
        audit_trail.record("tenant.split", tenant_id, location, audit_trail.FAILED,
                           {"error": error})
        return TenantSplit(tenant_id, location, FAILED, 0, time.perf_counter() - started,
                           error)
    if status == COPIED:
        audit_trail.record("tenant.split", tenant_id, location, audit_trail.OK,
                     {"rows": rows, "source": plan.source, "revision": plan.revision})
    return TenantSplit(tenant_id, location, status, rows, time.perf_counter() - started)


def prepare_target(backend: Backend, scripts: MigrationScripts, tenant_id: str,
                   revision: str | None) -> str | None:
    """Create the tenant empty at ``revision`` unless it exists; its revision afterwards."""
    at_head = revision is not None and revision == scripts.head
    # At head: the usual provisioning (head DDL, stamped), in one transaction.
    if at_head and scripts.location == MIGRATIONS_DIR and backend.create(
            tenant_id, head_ddl(backend.kind) + version_table_ddl(str(revision))):
        return revision
    backend.create(tenant_id, "")
    if not backend.catalog(tenant_id) and revision is not None:
        step = TenantStep(tenant_id, backend.location(tenant_id), None, revision, "upgrade")
        result = migrate_tenant(backend, scripts, step, StepOptions())
        if not result.ok:
            raise RuntimeError(f"provisioning at revision {revision} failed: {result.error}")
    return backend.read_revisions([tenant_id])[tenant_id]


def _fill(fill: TenantFill, plan: SplitPlan, tenant_id: str, current: str | None
          ) -> tuple[str, int]:
    # Under the tenant's lock, in the filling transaction.
    contents = fill.lock_contents()
    _foreign_rows_guard(tenant_id)(contents)
    existing = {t: contents.rows.get(t, 0) for t in TABLE_NAMES}
    if any(existing.values()):
        if not mismatches(fill, plan, tenant_id):
            return COMPLETE, sum(existing.values())
        raise SplitRefused(f"tenant {tenant_id!r} already holds other data "
                           f"({sum(existing.values())} rows); drop it or map its baskets "
                           "to another tenant")
    _refuse_other_revision(tenant_id, current, plan.revision)
    baskets = plan.tenants[tenant_id]
    rows = 0
    copied: dict[str, TableDigest] = {}
    for table in COPY_ORDER:
        columns = [c for c, _ in fill.source.columns(table)]
        if set(columns) != set(fill.target_columns(table)):
            raise SplitRefused(f"tenant {tenant_id!r}: table {table} has other columns than "
                               "the source; drop the tenant and rerun")
        count, copied[table] = fill.copy_with_digest(
            table, columns, subset_where(table, plan.drop_edges), baskets)
        rows += count
    problems = mismatches(fill, plan, tenant_id, copied)
    if problems:
        raise RuntimeError("verification failed: " + "; ".join(problems))
    return COPIED, rows


def mismatches(fill: TenantFill, plan: SplitPlan, tenant_id: str,
               source: dict[str, TableDigest] | None = None) -> list[str]:
    """Tables whose tenant copy differs from the source subset (count or checksum).

    ``source``: the subsets' digests when the copy already computed them from the
    rows it read; otherwise each subset is read and digested again.
    """
    problems = []
    baskets = plan.tenants[tenant_id]
    digests = fill.target_digests()
    for table in COPY_ORDER:
        mine = digests[table]
        theirs = (source or {}).get(table) or fill.source_digest(
            table, subset_where(table, plan.drop_edges), baskets)
        planned = plan.counts[tenant_id][table]
        if mine != theirs or mine.rows != planned:
            problems.append(f"{table}: {mine.rows} rows (checksum {mine.checksum[:12]}) in the "
                            f"tenant, {theirs.rows} (checksum {theirs.checksum[:12]}) in the "
                            f"source, {planned} planned")
    return problems


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
