"""Tenants not at head (the deploy's migration would change them), and unreadable ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.backends.base import FOREIGN, UNREADABLE
from docex_ops.doctor.results import FAIL, PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext

# Reported by the schemas check instead.
_NOT_TENANTS = (FOREIGN, "unversioned", "empty")


def check_revisions(ctx: DoctorContext) -> list[DoctorRow]:
    if ctx.unreachable:
        return []
    report = ctx.status
    tenants = [t for t in report.tenants if t.state not in _NOT_TENANTS]
    target = f"tenants at head {report.head}"
    unreadable = [t for t in tenants if t.state in UNREADABLE]
    behind = [t for t in tenants if t.state not in ("current", *UNREADABLE)]
    rows = []
    if unreadable:
        rows.append(DoctorRow("revisions", target, FAIL,
                              f"{len(unreadable)} tenant(s) cannot be read: " + ", ".join(
                                  f"{t.tenant_id} ({t.detail or t.state})"
                                  for t in unreadable[:5])))
    if behind:
        rows.append(DoctorRow("revisions", target, WARN,
                              f"{len(behind)} of {len(tenants)} tenant(s) not at head: "
                              + ", ".join(f"{t.tenant_id} at {t.revision or t.state}"
                                          for t in behind[:10])
                              + "; `docex-ops migrate upgrade` brings them there"))
    if not rows:
        rows.append(DoctorRow("revisions", target, PASS,
                              f"all {len(tenants)} tenant(s) at head"))
    return rows
