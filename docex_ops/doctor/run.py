"""Run the doctor's checks for the configured kind; never raises."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.context import DoctorContext
from docex_ops.doctor.pg_connect import one_line
from docex_ops.doctor.registry import checks_for
from docex_ops.doctor.results import FAIL, DoctorReport, DoctorRow

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.scripts import MigrationScripts


def run_doctor(manager: TenantDatabaseManager,
               scripts: MigrationScripts | None = None) -> DoctorReport:
    """Every check of the manager's kind, in registry order: PASS/WARN/FAIL rows. A check
    that breaks is a FAIL row saying why, and the others still run."""
    from docex_ops.migrate.scripts import MigrationScripts

    ctx = DoctorContext(manager, scripts or MigrationScripts())
    report = DoctorReport()
    for check in checks_for(manager.backend.kind):
        try:
            report.rows.extend(check.run(ctx))
        except Exception as exc:  # noqa: BLE001 - one check's failure is its FAIL row
            report.rows.append(DoctorRow(check.name, "-", FAIL,
                                         f"the check could not run: {one_line(exc)}"))
    return report
