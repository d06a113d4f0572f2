"""``docex-ops migrate lint`` and the lint's part of ``migrate upgrade``: render findings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from docex_ops.cli.common import OperationFailed, emit, format_option, info, state
from docex_ops.cli.options import example
from docex_ops.cli.output import problem_entry

if TYPE_CHECKING:
    from docex_ops.lint.findings import Finding
    from docex_ops.lint.run import LintReport


def allow_option(func: Any) -> Any:
    return click.option("--allow", multiple=True, metavar="RULE",
                        help="Waive this lint rule for the run (repeatable); see "
                             "`docex-ops migrate lint`.")(func)


@click.command("lint", epilog=example(
    "docex-ops migrate lint 0002_docex_2_9_9:head --dialect postgresql"))
@click.argument("rev_range", required=False, metavar="[REV_RANGE]")
@allow_option
@click.option("--dialect", type=click.Choice(["postgresql", "sqlite"]), multiple=True,
              help="Render for this backend (default: the configured one).")
@click.option("--sizes/--no-sizes", default=True, show_default=True,
              help="Read the fleet's table sizes to say how long each lock is held.")
@format_option
def lint_cmd(rev_range: str | None, allow: tuple[str, ...], dialect: tuple[str, ...],
             sizes: bool, fmt: str | None) -> None:
    """Lint revisions with PostgreSQL's own parser: the lock each statement takes, table
    rewrites and scans, and the safe alternative. REV_RANGE: FROM:TO, TO or FROM: (ids,
    head, base); default every revision. Exit 1 on an error-level finding not waived."""
    from docex_ops.lint.run import lint_revisions
    from docex_ops.lint.sizes import fleet_sizes
    from docex_ops.migrate.scripts import MigrationScripts
    from docex_ops.migrate.servers import control_backend

    scripts = click.get_current_context().find_object(MigrationScripts) or MigrationScripts()
    start, _, end = (rev_range or "").rpartition(":") if ":" in (rev_range or "") else (
        "", "", rev_range or "")
    manager = state().manager
    backend = control_backend(manager)
    try:
        report = lint_revisions(
            scripts, dialect or [backend.kind],
            scripts.resolve(start, None) if start and start != "base" else None,
            end or None, backend.settings.lock_timeout,
            fleet_sizes(manager) if sizes else None, allow)
    except ValueError as exc:
        raise OperationFailed(str(exc)) from None
    show_findings(report, fmt)
    if not report.ok:
        raise OperationFailed(f"lint: {len(report.stopping)} error-level finding(s): "
                              + ", ".join(sorted({f.rule for f in report.stopping})))


def show_findings(report: LintReport, fmt: str | None) -> None:
    rows = [_row(f) for f in report.findings]
    emit(rows, fmt, columns=["revision", "dialect", "rule", "severity", "table", "lock",
                             "rows", "worst_seconds", "waived", "statement"],
         payload={"revisions": report.revisions, "ok": report.ok,
                  "findings": report.findings},
         problems=[problem_entry(f"{f.revision} [{f.rule}] {f.why}") for f in report.stopping])
    for finding in report.findings:
        if not finding.waived:
            info(f"{finding.revision} [{finding.rule}] {finding.why}; instead: "
                 f"{finding.instead}")


def show_lint(report: LintReport) -> None:
    """An upgrade's findings, before any tenant is touched (migrate/lint_gate.py decides
    whether they stop it)."""
    for finding in report.findings:
        waived = f" (waived: {finding.waived})" if finding.waived else ""
        info(f"lint {finding.revision} [{finding.rule}] {finding.severity}{waived}: "
             f"{finding.why}; instead: {finding.instead}")


def _row(finding: Finding) -> dict[str, Any]:
    return {"revision": finding.revision, "dialect": finding.dialect, "rule": finding.rule,
            "severity": finding.severity, "table": finding.table, "lock": finding.lock,
            "rows": finding.rows, "worst_seconds": finding.worst_seconds,
            "waived": finding.waived, "statement": finding.statement.splitlines()[0][:80]
            if finding.statement else ""}
