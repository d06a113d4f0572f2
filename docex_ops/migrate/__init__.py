"""Plan and run Alembic revisions across tenants.

Public API (the CLI and env.py are thin layers over it):
Each takes the TenantDatabaseManager and returns results; nothing here prints.

- ``select_tenants`` / ``status`` / ``make_plan``: who is where, decided up front;
- ``offline_scripts``: the plan as SQL scripts, one per tenant (``--sql``);
- ``migrate`` / ``run_plan`` / ``resume``: execute on N workers, one transaction per tenant;
- ``migrate_tenant``: the per-tenant step both runners share;
- ``adopt`` / ``check``: recognise revisions from structure, report drift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops import lazy_exports

if TYPE_CHECKING:
    from docex_ops.migrate.adoption import StructureResult, adopt, check
    from docex_ops.migrate.offline import offline_scripts
    from docex_ops.migrate.plan import (
        Plan,
        Selection,
        StatusReport,
        make_plan,
        plan_steps,
        select_tenants,
        status,
        status_of,
    )
    from docex_ops.migrate.runner import (
        Resumption,
        RunOptions,
        RunReport,
        migrate,
        plan_resumption,
        recorded_runs,
        resume,
        run_plan,
        run_resumption,
        upgrade_tenants,
    )
    from docex_ops.migrate.runs import RunStore
    from docex_ops.migrate.scripts import MigrationScripts, RevisionError
    from docex_ops.migrate.tenant import StepOptions, TenantResult, TenantStep, migrate_tenant

__all__ = [
    "MigrationScripts", "Plan", "Resumption", "RevisionError", "RunOptions", "RunReport",
    "RunStore", "Selection", "StatusReport", "StepOptions", "StructureResult", "TenantResult",
    "TenantStep", "adopt", "check", "make_plan", "migrate", "migrate_tenant", "offline_scripts",
    "plan_resumption", "plan_steps", "recorded_runs", "resume", "run_plan", "run_resumption",
    "select_tenants", "status", "status_of", "upgrade_tenants"
]
__getattr__ = lazy_exports(__name__, {
    "MigrationScripts": "docex_ops.migrate.scripts",
    "Plan": "docex_ops.migrate.plan",
    "Resumption": "docex_ops.migrate.runner",
    "RevisionError": "docex_ops.migrate.scripts",
    "RunOptions": "docex_ops.migrate.runner",
    "RunReport": "docex_ops.migrate.runner",
    "RunStore": "docex_ops.migrate.runs",
    "Selection": "docex_ops.migrate.plan",
    "StatusReport": "docex_ops.migrate.plan",
    "StepOptions": "docex_ops.migrate.tenant",
    "StructureResult": "docex_ops.migrate.adoption",
    "TenantResult": "docex_ops.migrate.tenant",
    "TenantStep": "docex_ops.migrate.tenant",
    "adopt": "docex_ops.migrate.adoption",
    "check": "docex_ops.migrate.adoption",
    "make_plan": "docex_ops.migrate.plan",
    "migrate": "docex_ops.migrate.runner",
    "migrate_tenant": "docex_ops.migrate.tenant",
    "offline_scripts": "docex_ops.migrate.offline",
    "plan_steps": "docex_ops.migrate.plan",
    "plan_resumption": "docex_ops.migrate.runner",
    "recorded_runs": "docex_ops.migrate.runner",
    "resume": "docex_ops.migrate.runner",
    "run_plan": "docex_ops.migrate.runner",
    "run_resumption": "docex_ops.migrate.runner",
    "select_tenants": "docex_ops.migrate.plan",
    "status": "docex_ops.migrate.plan",
    "status_of": "docex_ops.migrate.plan",
    "upgrade_tenants": "docex_ops.migrate.runner",
})
