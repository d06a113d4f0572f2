"""Upgrade runs the lint first: the revisions a plan would apply, for the fleet's kind,
checked before any tenant is touched (``--allow RULE`` and revision waivers apply;
``--force`` stands for the data loss the drop rule reports)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from docex_ops.migrate.plan import Plan
from docex_ops.migrate.runner import RunOptions
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.migrate.servers import control_backend

if TYPE_CHECKING:
    from docex_ops.lint.run import LintReport
    from docex_ops.manager.tenant_manager import TenantDatabaseManager


def lint_plan(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
              options: RunOptions, allow: Iterable[str] = ()) -> LintReport | None:
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
    lock_timeout = (backend.settings.lock_timeout if options.step.lock_timeout is None
                    else options.step.lock_timeout)
    waived = set(allow) | (FORCE_WAIVES if options.step.force else set())
    return lint_revisions(scripts, [backend.kind], lowest, highest, lock_timeout,
                          allow=waived)
