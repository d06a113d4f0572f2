"""``docex-ops migrate ...``: status, upgrade, downgrade, stamp, adopt, check, runs, resume."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from docex_ops import migrate as ops
from docex_ops.backends.base import FOREIGN, UNREADABLE
from docex_ops.backends.guards import DEFAULT_SAFETY_DIR
from docex_ops.cli.common import (
    OperationFailed,
    emit,
    format_option,
    info,
    is_json,
    state,
)
from docex_ops.cli.migrate_lint import allow_option, lint_cmd, show_lint
from docex_ops.cli.migrate_render import first, render_dry_run, render_report
from docex_ops.cli.options import Duration, example, jobs_option, selection_options
from docex_ops.cli.output import placement_problems, problem_entry
from docex_ops.cli.progress import TenantProgress
from docex_ops.topology.fleet_view import PlacementProblem

if TYPE_CHECKING:
    pass


def execution_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @jobs_option("Tenants migrated at once, each on its own worker connection; with "
                 "several servers, at once on each server.")
    @click.option("--continue-on-error", is_flag=True,
                  help="Keep starting tenants after a failure (default: stop starting new ones).")
    @click.option("--max-failures", type=click.IntRange(1), default=None,
                  help="Stop starting new tenants after this many failures.")
    @click.option("--canary", type=click.IntRange(0), default=0,
                  help="Migrate this many tenants first; stop if any of them fails.")
    @click.option("--lock-timeout", type=Duration(), default=None,
                  help="How long a tenant waits for application locks before it fails "
                       "(500ms, 5s, 1min; default: the global --lock-timeout, else "
                       "database.lock_timeout).")
    @click.option("--statement-timeout", type=Duration(), default=None,
                  help="How long any one statement may run (5s, 10min, 1h).")
    @click.option("--lock-retries", type=click.IntRange(0), default=0, show_default=True,
                  help="Retry a tenant whose lock could not be had this many times, each "
                       "attempt its own transaction, with exponential backoff and jitter.")
    @click.option("--waves", default=None, metavar="SIZES",
                  help="Migrate in waves, e.g. 1,5%,25%,100% (cumulative counts or "
                       "percentages of the selected tenants; --canary is the first wave).")
    @click.option("--max-failure-rate", type=click.FloatRange(0, 1), default=0.0,
                  show_default=True,
                  help="Do not start the next wave when more than this share of the last "
                       "one failed; `migrate resume` continues.")
    @click.option("--wave-pause", type=Duration(), default=0.0,
                  help="How long to wait between waves for an operator to look (5s, "
                       "10min; Ctrl-C stops, `migrate resume` continues).")
    @click.option("--order", default=None, metavar="size|name|FILE",
                  help="Who goes first: size (smallest first), name, or a tenants file.")
    @click.option("--wait", is_flag=True,
                  help="Wait for another running migration instead of exiting 1.")
    @click.option("--online-only", is_flag=True,
                  help="Run Alembic per tenant even where the rendered SQL could be replayed.")
    @functools.wraps(func)
    def wrapper(jobs: int, continue_on_error: bool, max_failures: int | None, canary: int,
                lock_timeout: float | None, lock_retries: int,
                statement_timeout: float | None, waves: str | None,
                max_failure_rate: float, wave_pause: float, order: str | None, wait: bool,
                online_only: bool, force: bool = False, safety_dir: Path | None = None,
                pg_bin: str | None = None, **kwargs: Any) -> Any:
        step = ops.StepOptions(force=force, fast_path=not online_only,
                               lock_timeout=lock_timeout, lock_retries=lock_retries,
                               statement_timeout=statement_timeout,
                               safety_dir=str(safety_dir) if safety_dir else None,
                               pg_bin=pg_bin)
        if order not in (None, "size", "name") and not Path(str(order)).is_file():
            raise click.BadParameter("size, name or an existing tenants file",
                                     param_hint="--order")
        from docex_ops.migrate.waves import parse_waves

        try:
            sizes = parse_waves(waves) if waves else ()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--waves") from None
        options = ops.RunOptions(step=step, jobs=jobs, continue_on_error=continue_on_error,
                                 max_failures=max_failures, canary=canary, wait=wait,
                                 waves=sizes, max_failure_rate=max_failure_rate,
                                 wave_pause=wave_pause, order=order)
        return func(options=options, **kwargs)
    return wrapper


@click.group()
@click.option("--scripts", "scripts_dir", type=click.Path(exists=True, file_okay=False),
              default=None, help="Alembic script directory (default: docex-ops' own).")
@click.pass_context
def migrate(ctx: click.Context, scripts_dir: str | None) -> None:
    """Alembic across every tenant: each tenant in one transaction, recorded per run."""
    ctx.obj = ops.MigrationScripts(Path(scripts_dir)) if scripts_dir else ops.MigrationScripts()


def _scripts() -> ops.MigrationScripts:
    obj = click.get_current_context().find_object(ops.MigrationScripts)
    assert obj is not None
    return obj


@migrate.command("status", epilog=example(
    "docex-ops migrate status --check --exclude scratch"))
@selection_options
@click.option("--check", "fail_behind", is_flag=True,
              help="Exit 1 when any tenant is not at head (for CI).")
@format_option
def status_cmd(selection: ops.Selection, fail_behind: bool, fmt: str | None) -> None:
    """Every tenant's revision, grouped, and which are behind."""
    report = ops.status(state().manager, _scripts(), selection)
    _show_problems(report.problems)
    rows: list[dict[str, Any]] = [
        {"revision": rev, "tenants": n} for rev, n in sorted(report.by_revision.items())]
    payload: dict[str, Any] = {"head": report.head, "counts": report.counts,
                               "by_revision": report.by_revision, "tenants": report.tenants}
    grouped = report.by_server
    if grouped is not None:
        rows = [{"server": server, "revision": rev, "tenants": n}
                for server, revisions in grouped.items() for rev, n in revisions.items()]
        payload.update(by_server=grouped)
    # A foreign schema is not a tenant that could be behind: reported, never a failure.
    behind = [t.tenant_id for t in report.tenants if t.state not in ("current", FOREIGN)]
    unreadable = [t for t in report.tenants if t.state in UNREADABLE]
    emit(rows, fmt, payload=payload, problems=placement_problems(report.problems) + [
        problem_entry(f"{t.state}: {t.detail}", t.tenant_id) for t in unreadable])
    for found in report.tenants:
        if found.state == FOREIGN:
            info(f"tenant {found.tenant_id}: foreign: {found.detail}; left alone")
    if not is_json(fmt):
        info(f"head {report.head}: " + ", ".join(f"{n} {s}" for s, n in report.counts.items())
             + (f"; not at head: {first(behind)}" if behind else ""))
    for tenant in unreadable:
        info(str(tenant.detail))
    if unreadable:
        raise OperationFailed(f"{len(unreadable)} tenant(s) could not be read: "
                              + first([f"{t.tenant_id} ({t.state})" for t in unreadable]))
    problems = report.problems
    if fail_behind and (behind or problems):
        raise OperationFailed(f"{len(behind)} tenant(s) not at head: {first(behind)}"
                              if behind else f"{len(problems)} tenant(s) with placement "
                              f"problems: {first([p.tenant_id for p in problems])}")


def _show_problems(problems: list[PlacementProblem]) -> None:
    """Tenants left out because the directory and the servers disagree (reported)."""
    for problem in problems:
        info(f"left out: {problem.message}")


def _run_command(action: str, target: str, selection: ops.Selection, options: ops.RunOptions,
                 dry_run: bool, sql: bool, report_file: Path | None, fmt: str | None,
                 allow: tuple[str, ...] = ()) -> None:
    manager, scripts = state().manager, _scripts()
    plan = ops.make_plan(manager, scripts, selection, action, target)
    _show_problems(plan.problems)
    options = replace(options, allow=allow)
    if sql:
        texts = ops.offline_scripts(manager, scripts, plan, force=options.step.force)
        if is_json(fmt):
            emit([], fmt, payload={"action": action, "target": target, "sql": texts})
        else:
            click.echo("\n".join(texts))
        return
    if dry_run:
        render_dry_run(manager, scripts, plan, action, target, options, fmt, selection)
        return
    with TenantProgress(summary=False) as bar:  # the run line below is the summary
        report = ops.run_plan(manager, scripts, plan, options, progress=bar,
                              on_lint=show_lint)
    render_report(report, fmt, report_file)
    named = set(selection.named())
    refused = [t for t, _ in report.skipped if t in named]
    if refused:  # named explicitly: say so with the exit code too
        raise OperationFailed(f"not DocEX tenants, left alone: {first(refused)}")


def _run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        selection_options, execution_options,
        click.option("--dry-run", is_flag=True, help="Show the plan; change nothing."),
        click.option("--sql", is_flag=True,
                     help="Print each tenant's SQL instead of running it (offline)."),
        click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the result as JSON (the --format json envelope) to "
                          "this file."),
        format_option,
    ]):
        func = decorator(func)
    return func


@migrate.command("upgrade", epilog=example(
    "docex-ops migrate upgrade --canary 1 -j 4 --lock-timeout 5s"))
@click.argument("target", default="head")
@allow_option
@click.option("--force", is_flag=True,
              help="Allow revisions that drop data (the lint's drop rule); back up first.")
@_run_options
def upgrade_cmd(target: str, **kwargs: Any) -> None:
    """Upgrade tenants to TARGET (default head; also +N or a revision id).

    The revisions are linted first: an error-level finding stops the run before any
    tenant is touched, unless waived (--allow RULE, or lint_waivers in the revision)."""
    _run_command("upgrade", target, **kwargs)


def _force_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--force and where it backs up: downgrade's, and resume's (a refused downgrade
    says "rerun with --force", and resume is how a refused run is rerun)."""
    for decorator in reversed([
        click.option("--force", is_flag=True,
                     help="Allow steps that can lose data; each tenant holding rows is backed "
                          "up first, in its migration's transaction."),
        click.option("--safety-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None,
                     help=f"Where --force backs tenants up (default: ./{DEFAULT_SAFETY_DIR})."),
        click.option("--pg-bin", type=click.Path(file_okay=False), default=None,
                     help="Folder holding pg_dump (default: PATH)."),
    ]):
        func = decorator(func)
    return func


@migrate.command("downgrade", context_settings={"ignore_unknown_options": True}, epilog=example(
    "docex-ops migrate downgrade -1 --tenant acme --dry-run"))
@click.argument("target")
@_force_options
@_run_options
def downgrade_cmd(target: str, **kwargs: Any) -> None:
    """Downgrade tenants to TARGET (-N, a revision id or base). Steps that lose data are
    refused for tenants holding rows, naming them, unless --force; with --force each such
    tenant is backed up first (the path is printed and in the audit line)."""
    _run_command("downgrade", target, **kwargs)


@migrate.command("stamp", epilog=example(
    "docex-ops migrate stamp head --tenant acme"))
@click.argument("target")
@_run_options
def stamp_cmd(target: str, **kwargs: Any) -> None:
    """Record TARGET as the tenants' revision without running anything."""
    _run_command("stamp", target, **kwargs)


@migrate.command("history", epilog=example(
    "docex-ops migrate history"))
@format_option
def history_cmd(fmt: str | None) -> None:
    """The revisions, oldest first."""
    scripts = _scripts()
    rows = [{"revision": rev, "down": scripts.script.get_revision(rev).down_revision,
             "fast_path": scripts.path_is_fast(scripts.order[i - 1] if i else None, rev),
             "message": (scripts.script.get_revision(rev).doc or "").splitlines()[0]}
            for i, rev in enumerate(scripts.order)]
    emit(rows, fmt, payload={"head": scripts.head, "revisions": rows})


@migrate.command("adopt", epilog=example(
    "docex-ops migrate adopt --dry-run"))
@selection_options
@click.option("--dry-run", is_flag=True, help="Say what would be stamped; stamp nothing.")
@format_option
def adopt_cmd(selection: ops.Selection, dry_run: bool, fmt: str | None) -> None:
    """Stamp tenants DocEX made (tables, no version) at the revision their structure matches."""
    _render_structure(ops.adopt(state().manager, _scripts(), selection, dry_run), fmt, "adopt")


@migrate.command("check", epilog=example(
    "docex-ops migrate check --tenant acme"))
@selection_options
@format_option
def check_cmd(selection: ops.Selection, fmt: str | None) -> None:
    """Compare each tenant's structure with its recorded revision; report drift."""
    _render_structure(ops.check(state().manager, _scripts(), selection), fmt, "check")


def _render_structure(results: list[ops.StructureResult], fmt: str | None, verb: str) -> None:
    rows = [{"tenant": r.tenant_id, "recorded": r.recorded, "matches": r.matches,
             "status": r.status, "problems": "; ".join(r.problems)} for r in results]
    bad = [r.tenant_id for r in results if not r.ok]
    emit(rows, fmt, payload={"tenants": results}, problems=[
        problem_entry(f"{r.status}: {'; '.join(r.problems)}", r.tenant_id)
        for r in results if not r.ok])
    if bad:
        raise OperationFailed(f"{verb}: {len(bad)} tenant(s) drifted or ambiguous: {first(bad)}")


@migrate.command("runs", epilog=example(
    "docex-ops migrate runs --limit 5"))
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True,
              help="How many of the newest runs to show.")
@format_option
def runs_cmd(limit: int, fmt: str | None) -> None:
    """Recorded migration runs, newest first."""
    runs = ops.recorded_runs(state().manager, limit)
    rows = [{"run": r.run_id, "action": r.action, "target": r.target, "actor": r.actor,
             "started": r.started_at, "status": r.status,
             "tenants": ", ".join(f"{n} {s}" for s, n in sorted(r.counts.items()))}
            for r in runs]
    emit(rows, fmt, payload={"runs": runs})


@migrate.command("resume", epilog=example(
    "docex-ops migrate resume 3f2c... --continue-on-error"))
@click.argument("run_id")
@_force_options
@execution_options
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the result as JSON (the --format json envelope) to this file.")
@format_option
def resume_cmd(run_id: str, options: ops.RunOptions, report_file: Path | None,
               fmt: str | None) -> None:
    """Retry only the tenants of RUN_ID that failed or never started.

    With several servers, --jobs applies per server, as in upgrade."""
    with TenantProgress(summary=False) as bar:
        report = ops.resume(state().manager, _scripts(), run_id, options, progress=bar,
                            on_lint=show_lint)
    render_report(report, fmt, report_file)


migrate.add_command(lint_cmd)
