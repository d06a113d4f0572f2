"""``migrate ... --dry-run``: the refusals the real run would meet, read-only.

Each planned downgrade step is judged by the real step's guard (tenant.downgrade_guard)
on the tenant's contents read without a lock: a step that loses data is refused for a
tenant holding rows unless --force, exactly as the run refuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from docex_ops.backends.contents import GuardRefusal
from docex_ops.migrate.tenant import downgrade_guard

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.plan import Plan
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
