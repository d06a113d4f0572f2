"""Schemas or files that look like tenants but are not versioned DocEX tenants:
unversioned (DocEX made them: adopt them), foreign (not DocEX's: left alone), and
tenants the directory and the servers disagree about."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.backends.base import FOREIGN
from docex_ops.doctor.results import PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext


def check_schemas(ctx: DoctorContext) -> list[DoctorRow]:
    if ctx.unreachable:
        return []
    report = ctx.status
    unversioned = [t.tenant_id for t in report.tenants if t.state == "unversioned"]
    foreign = [f"{t.tenant_id} ({t.detail})" for t in report.tenants if t.state == FOREIGN]
    problems = [p.message for p in report.problems]
    rows = []
    if unversioned:
        rows.append(DoctorRow("schemas", "unversioned", WARN,
                              f"{len(unversioned)} DocEX tenant(s) without a version table: "
                              f"{', '.join(unversioned[:10])}; `docex-ops migrate adopt` "
                              "stamps them"))
    if foreign:
        rows.append(DoctorRow("schemas", "foreign", WARN,
                              f"{len(foreign)} match the tenant template but are not DocEX "
                              f"tenants (left alone by every command): {', '.join(foreign[:5])}"))
    if problems:
        rows.append(DoctorRow("schemas", "placement", WARN, "; ".join(problems[:5])))
    if not rows:
        rows.append(DoctorRow("schemas", "tenants", PASS,
                              f"{len(report.tenants)} tenant(s), all versioned DocEX tenants"))
    return rows
