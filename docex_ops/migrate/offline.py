"""``--sql``: each planned tenant's migration as a script to run elsewhere (offline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.migrate.kinds import KINDS
from docex_ops.migrate.plan import Plan
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.migrate.servers import control_backend

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager


def offline_scripts(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
                    force: bool = False) -> list[str]:
    """Per step of ``plan``, in order: one transaction that points at the tenant (its
    schema's search_path, or a note naming its file) and runs the step's SQL."""
    dialect = control_backend(manager).kind  # every server is of the same kind
    texts = []
    for step in plan.steps:
        header = KINDS.for_kind(dialect).header(step.location)
        sql = scripts.render_for_tenant(dialect, step.current, step.target,
                                        downgrade=plan.action == "downgrade", force=force)
        texts.append(f"-- tenant {step.tenant_id}: {step.current or 'base'} -> "
                     f"{step.target or 'base'}\nBEGIN;\n{header}\n{sql}COMMIT;\n")
    return texts
