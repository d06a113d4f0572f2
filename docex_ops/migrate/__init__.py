"""Plan and run Alembic revisions across tenants.

Public API (the CLI and env.py are thin layers over it):
- ``select_tenants`` / ``status`` / ``make_plan``: who is where, decided up front;
- ``migrate`` / ``run_plan`` / ``resume``: execute on N workers, one transaction per tenant;
- ``migrate_tenant``: the per-tenant step both runners share;
- ``adopt`` / ``check``: recognise revisions from structure, report drift.
"""

from docex_ops.migrate.adopt import StructureResult, adopt, check
from docex_ops.migrate.plan import Plan, Selection, StatusReport, make_plan, select_tenants, status
from docex_ops.migrate.runner import (
    Resumption,
    RunOptions,
    RunReport,
    migrate,
    plan_resumption,
    resume,
    run_plan,
    run_resumption,
    upgrade_tenants,
)
from docex_ops.migrate.runs import RunStore
from docex_ops.migrate.scripts import MigrationScripts, RevisionError
from docex_ops.migrate.tenant import StepOptions, TenantResult, TenantStep, migrate_tenant

__all__ = [
    "MigrationScripts", "Plan", "RevisionError", "RunOptions", "RunReport", "RunStore",
    "Selection", "StatusReport", "StepOptions", "StructureResult", "TenantResult", "TenantStep",
    "adopt", "check", "make_plan", "migrate", "migrate_tenant", "plan_resumption", "resume",
    "Resumption", "run_plan", "run_resumption",
    "select_tenants", "status", "upgrade_tenants",
]
