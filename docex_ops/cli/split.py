"""``docex-ops split plan|run|verify``: a single-tenant DocEX database into tenants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from docex_ops import split as ops
from docex_ops.cli.common import (
    OperationFailed,
    UsageProblem,
    emit,
    format_option,
    info,
    is_json,
    state,
)
from docex_ops.cli.options import example, jobs_option, selection_options
from docex_ops.cli.output import problem_entry
from docex_ops.cli.progress import TenantProgress
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.source import SplitSource
from docex_ops.tenancy import validate_all

if TYPE_CHECKING:
    from docex_ops.migrate.plan import Selection

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    options = [
        click.option("--source", required=True, metavar="URL|FILE",
                     help="The single-tenant database: postgresql://user@host/db, "
                          "sqlite:///path or a SQLite file path. Never written."),
        click.option("--source-schema", default="public", show_default=True,
                     help="PostgreSQL schema holding the DocEX tables."),
        click.option("--mapping", "mapping_path", required=True,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="YAML or CSV: basket id or name -> tenant id (optional default)."),
        click.option("--target-config", type=click.Path(dir_okay=False), default=None,
                     help="DocEX config of the tenants (default: the global --config)."),
        click.option("--unmapped", default=None, metavar="skip|TENANT",
                     help="Baskets the mapping does not name: 'skip' leaves them (and all "
                          "their rows) out; a tenant id sends them there. Default: a problem."),
        click.option("--cross-tenant-edges", type=click.Choice(["drop"]), default=None,
                     help="'drop': operation dependencies and doc_events pointing into "
                          "another tenant are not copied. Default: a problem."),
        click.option("--ignore-extra-objects", "ignore_extra", is_flag=True,
                     help="Leave out what the source holds besides DocEX's 11 tables "
                          "(functions, views, triggers, other tables, ...): a split reads "
                          "only DocEX's tables' rows. Default: a problem."),
        format_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _inputs(source: str, source_schema: str, mapping_path: Path, target_config: str | None,
            unmapped: str | None, edges: str | None, ignore_extra: bool
            ) -> tuple[SplitSource, ops.BasketMapping, ops.PlanOptions, TenantDatabaseManager]:
    try:
        mapping = ops.load_mapping(mapping_path)
    except ops.MappingError as exc:
        raise UsageProblem(str(exc)) from exc
    return (ops.open_source(source, source_schema), mapping,
            ops.PlanOptions(unmapped, edges, ignore_extra), state().manager_for(target_config))


@click.group()
def split() -> None:
    """Split a single-tenant DocEX database into tenants (DocEX guide, "Migration from
    single-tenant", step 3). Each basket goes to the tenant the mapping names, with its
    documents, metadata, file history, operations, dependencies, events and processing
    operations; processors and transport_routes are copied to every tenant."""


@split.command("plan", epilog=example(
    "docex-ops split plan --source postgresql://docex@db/docex --mapping baskets.yaml"))
@_common
def plan_cmd(source: str, source_schema: str, mapping_path: Path, target_config: str | None,
             unmapped: str | None, cross_tenant_edges: str | None, ignore_extra: bool,
             fmt: str | None) -> None:
    """Show per tenant and table the rows that would be copied, and every problem.
    Exits 1 while a problem is not resolved by an explicit flag."""
    src, mapping, options, manager = _inputs(source, source_schema, mapping_path,
                                             target_config, unmapped, cross_tenant_edges,
                                             ignore_extra)
    try:
        plan = ops.plan_split(src, mapping, options, manager)
    finally:
        src.dispose()
    _show_plan(plan, fmt)
    if not plan.ok:
        raise OperationFailed(f"{len(plan.blocking)} problem(s) stop the split; see above")


def _show_plan(plan: ops.SplitPlan, fmt: str | None) -> None:
    rows = [{"tenant": t, **counts, "total": sum(counts.values())}
            for t, counts in plan.counts.items()]
    payload = {"source": plan.source, "revision": plan.revision, "tenants": plan.tenants,
               "counts": plan.counts, "source_counts": plan.source_counts,
               "skipped": plan.skipped, "findings": plan.problems,
               "choices": [{"option": flag, "meaning": meaning}
                           for flag, meaning in ops.CHOICES.items()],
               "notes": plan.notes, "ok": plan.ok}
    emit(rows, fmt, ["tenant", *TABLE_NAMES, "total"], payload=payload,
         problems=[problem_entry(f"{p.kind}: {p.message}") for p in plan.blocking])
    if is_json(fmt):
        return
    info(f"source {plan.source} at revision {plan.revision or 'unversioned (recognised at run)'}")
    for problem in plan.problems:
        tag = f"resolved by {problem.resolved_by}" if problem.resolved_by else "PROBLEM"
        info(f"{tag}: {problem.kind}: {problem.message}")
    if plan.skipped:
        info("left out: " + ", ".join(f"{t} {n}" for t, n in plan.skipped.items()))
    for note in plan.notes:
        info(f"note: {note}")
    for flag, meaning in ops.CHOICES.items():
        info(f"{flag}: {meaning}")


@split.command("run", epilog=example(
    "docex-ops split run --source docex.db --mapping baskets.yaml -j 4 --upgrade"))
@_common
@jobs_option(help_text="Tenants filled at the same time (each on the same source snapshot).")
@click.option("--dry-run", is_flag=True, help="Plan and show what each tenant would get; "
                                              "write nothing.")
@click.option("--upgrade", is_flag=True, help="Afterwards, migrate the new tenants to head.")
@click.option("--continue-on-error", is_flag=True,
              help="Keep starting tenants after one failed (default: stop starting new ones).")
@click.option("--source-revision", default=None, metavar="REV",
              help="The source's revision when it has no alembic_version (default: "
                   "recognised from its structure).")
@selection_options
def run_cmd(source: str, source_schema: str, mapping_path: Path, target_config: str | None,
            unmapped: str | None, cross_tenant_edges: str | None, ignore_extra: bool,
            fmt: str | None, jobs: int, dry_run: bool, upgrade: bool, continue_on_error: bool,
            source_revision: str | None, selection: Selection) -> None:
    """Copy each tenant's rows (ids kept) in its own transaction, verify counts and
    checksums against the source subset, commit or roll that tenant back. A rerun skips
    tenants already complete; tenants holding other data are refused.

    --tenant/--tenants-file/--exclude fill only some of the mapped tenants (the
    others can follow in a later run); a name the mapping does not fill is refused."""
    only, exclude = tuple(selection.named()), tuple(validate_all(selection.exclude))
    src, mapping, options, manager = _inputs(source, source_schema, mapping_path,
                                             target_config, unmapped, cross_tenant_edges,
                                             ignore_extra)
    settings = ops.RunSettings(jobs, dry_run, upgrade, continue_on_error, source_revision,
                               only, exclude)
    try:
        with TenantProgress() as bar:
            report = ops.run_split(src, mapping, options, manager, settings, progress=bar)
    finally:
        src.dispose()
    if not report.plan.ok:
        _show_plan(report.plan, fmt)
        raise OperationFailed(f"{len(report.plan.blocking)} problem(s) stop the split; "
                              "nothing was written")
    rows = [{"tenant": r.tenant_id, "status": r.status, "rows": r.rows,
             "seconds": round(r.seconds, 3), "location": r.location, "error": r.error}
            for r in report.results]
    emit(rows, fmt, payload={"mode": report.mode, "revision": report.plan.revision,
                             "dry_run": report.dry_run, "results": rows,
                             "not_started": report.not_started, "upgraded": report.upgraded,
                             "ok": report.ok},
         problems=[problem_entry(f"{r.status}: {r.error}", r.tenant_id) for r in report.results
                   if not r.ok])
    info(f"copy mode: {report.mode}; source revision {report.plan.revision}")
    if report.not_started:
        info("not started (a tenant failed first): " + ", ".join(report.not_started))
    if not report.ok:
        bad = [r.tenant_id for r in report.results if not r.ok]
        raise OperationFailed(f"{len(bad)} tenant(s) failed or refused: {', '.join(bad)}; "
                              "rerun after fixing: complete tenants are skipped")


@split.command("verify", epilog=example(
    "docex-ops split verify --source docex.db --mapping baskets.yaml"))
@_common
def verify_cmd(source: str, source_schema: str, mapping_path: Path, target_config: str | None,
               unmapped: str | None, cross_tenant_edges: str | None, ignore_extra: bool,
               fmt: str | None) -> None:
    """Re-check a finished split against the source: every tenant's tables equal its
    subset of the source (count and checksum), every source row is in exactly one tenant
    (global tables in all) or was left out by a flag. Exits 1 on any difference."""
    src, mapping, options, manager = _inputs(source, source_schema, mapping_path,
                                             target_config, unmapped, cross_tenant_edges,
                                             ignore_extra)
    try:
        report = ops.verify_split(src, mapping, options, manager)
    finally:
        src.dispose()
    if not report.plan.ok:
        _show_plan(report.plan, fmt)
        raise OperationFailed("the plan has problems; pass the flags the run used")
    rows = [{"tenant": t.tenant_id, "rows": t.rows, "status": "ok" if t.ok else "FAILED",
             "problems": "; ".join(t.problems)} for t in report.tenants]
    emit(rows, fmt, payload={"tenants": rows, "coverage": report.coverage, "ok": report.ok},
         problems=[problem_entry("; ".join(t.problems), t.tenant_id)
                   for t in report.tenants if not t.ok]
         + [problem_entry(f"coverage: {c}") for c in report.coverage])
    for problem in report.coverage:
        info(f"coverage: {problem}")
    if not report.ok:
        raise OperationFailed("the split does not match the source")
