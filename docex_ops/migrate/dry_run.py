"""``migrate ... --dry-run``: the refusals the real run would meet, read-only.

Each planned downgrade step is judged by the real step's guard (tenant.downgrade_guard)
on the tenant's contents read without a lock: a step that loses data is refused for a
tenant holding rows unless --force, exactly as the run refuses it. ``verdict`` says
how the real run would end (blocked tenants, named tenants it would leave alone, the
lint's refusal), so the dry run exits as the run would.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from docex_ops.backends.contents import GuardRefusal
from docex_ops.migrate.lint_gate import FindingsFn, LintRefusal, gate
from docex_ops.migrate.tenant import downgrade_guard

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.plan import Plan
    from docex_ops.migrate.runner import RunOptions
    from docex_ops.migrate.scripts import MigrationScripts


def _never(_raw: bool) -> Path:  # a dry run takes no backup
    raise AssertionError("a dry run takes no backup")


def refusals(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
             force: bool) -> dict[str, str]:
    """Tenant -> why the real run would refuse its step (only refused tenants)."""
    refused: dict[str, str] = {}
    for step in plan.steps:
        if step.action != "downgrade":
            continue
        guard = downgrade_guard(scripts, step, step.current, force, _never)
        if guard is None:
            continue
        contents = manager.topology.read_contents(step.tenant_id)
        if contents is None:
            continue
        try:
            guard.check(contents)
        except GuardRefusal as exc:
            refused[step.tenant_id] = str(exc)
    return refused


@dataclass(frozen=True)
class DryRunVerdict:
    """What the real run would meet; ``failure`` is the line it would end with."""

    refused: dict[str, str] = field(default_factory=dict)   # tenant -> the guard's refusal
    blocked: list[str] = field(default_factory=list)        # the run reports them, exit 1
    left_alone: list[str] = field(default_factory=list)     # named, but not DocEX tenants
    lint: str | None = None                                  # the lint's refusal

    @property
    def failure(self) -> str | None:
        if self.refused:
            return (f"{len(self.refused)} tenant(s) would be refused: "
                    f"{', '.join(sorted(self.refused))}; rerun with --force (each such "
                    "tenant is backed up first)")
        if self.blocked:
            return f"the run would be incomplete; blocked: {', '.join(self.blocked)}"
        if self.left_alone:
            return f"not DocEX tenants, the run would leave them alone: " \
                   f"{', '.join(self.left_alone)}"
        return self.lint  # the run would stop here, before any tenant: so does its plan


def verdict(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
            options: RunOptions, named: Collection[str],
            on_lint: FindingsFn | None = None) -> DryRunVerdict:
    """The real run's refusals and its exit, for ``plan`` (``named``: the tenants the
    operator selected by id; a skipped one of them fails the run, as it does here). The
    lint runs as the run's would (``on_lint`` is shown its findings)."""
    try:
        gate(manager, scripts, plan, options.step, options.allow, on_lint)
        lint = None
    except LintRefusal as exc:
        lint = str(exc)
    return DryRunVerdict(refusals(manager, scripts, plan, options.step.force),
                         [info.tenant_id for info, _ in plan.blocked],
                         [info.tenant_id for info, _ in plan.skipped
                          if info.tenant_id in named], lint)
