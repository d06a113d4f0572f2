"""An upgrade is linted first, in the operation: the revisions a plan would apply, for the
fleet's kind, checked before any tenant is touched, whoever runs it (the CLI, ``migrate
resume``, a runbook calling ``run_plan``). ``allow`` and revision waivers apply; ``--force``
stands for the data loss the drop rule reports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from docex_ops.migrate.plan import Plan
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.migrate.servers import control_backend
from docex_ops.migrate.tenant import StepOptions

if TYPE_CHECKING:
    from docex_ops.lint.run import LintReport
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

# Shown the findings before any tenant is touched (the CLI prints them).
FindingsFn = Callable[["LintReport"], None]


class LintRefusal(RuntimeError):
    """An error-level finding nobody waived (or an unknown rule to waive): nothing ran."""

    def __init__(self, message: str, report: LintReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def lint_plan(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
              step: StepOptions, allow: Iterable[str] = ()) -> LintReport | None:
    """The lint of every revision some step of an upgrade plan applies; None when the plan
    applies none (a no-op upgrade stays one catalog read, no pglast)."""
    steps = [s for s in plan.steps if s.target is not None]
    if plan.action != "upgrade" or not steps:
        return None
    from docex_ops.lint.rule_names import FORCE_WAIVES
    from docex_ops.lint.run import lint_revisions

    backend = control_backend(manager)  # every server is of the same kind
    lowest = min(steps, key=lambda s: scripts.position(s.current)).current
    highest = max(steps, key=lambda s: scripts.position(s.target)).target
    lock_timeout = backend.settings.lock_timeout if step.lock_timeout is None \
        else step.lock_timeout
    waived = set(allow) | (FORCE_WAIVES if step.force else set())
    try:
        return lint_revisions(scripts, [backend.kind], lowest, highest, lock_timeout,
                              allow=waived)
    except ValueError as exc:  # an unknown rule to waive
        raise LintRefusal(str(exc)) from None


def refusal(report: LintReport | None) -> str | None:
    """The line an upgrade stops with, or None when nothing stops it."""
    if report is None or not report.stopping:
        return None
    rules = sorted({f.rule for f in report.stopping})
    return (f"lint: {len(report.stopping)} error-level finding(s) ({', '.join(rules)}); "
            "nothing was changed. Fix the revision, waive it in the revision (lint_waivers) "
            "or rerun with " + " ".join(f"--allow {r}" for r in rules))


def gate(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
         step: StepOptions, allow: Iterable[str], on_findings: FindingsFn | None
         ) -> LintReport | None:
    """Lint the plan, show the findings, and raise LintRefusal if one stops the run."""
    report = lint_plan(manager, scripts, plan, step, allow)
    if report is not None and report.findings and on_findings is not None:
        on_findings(report)
    stop = refusal(report)
    if stop is not None:
        raise LintRefusal(stop, report)
    return report
