"""The connection budget against what each server accepts (the capacity ``pools report``
computes: tenants x pool, the budget, max_connections minus the reserved ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext
    from docex_ops.pools.capacity import Capacity


def check_budget(ctx: DoctorContext) -> list[DoctorRow]:
    if ctx.unreachable:
        return []  # the report reads every server; connectivity already failed
    from docex_ops.pools.report import build_report

    report = build_report(ctx.manager)
    sections: list[tuple[str, Capacity]] = [
        (ctx.where(s.name), s.capacity) for s in report.servers]
    if report.capacity is not None:
        sections.append((next(ctx.where(n) for n in ctx.manager.servers), report.capacity))
    return [_row(target, capacity) for target, capacity in sections]


def _row(target: str, capacity: Capacity) -> DoctorRow:
    if capacity.exceeds or capacity.warnings:
        return DoctorRow("connections", target, WARN, "; ".join(capacity.warnings))
    return DoctorRow("connections", target, PASS,
                     f"worst case {capacity.tenants} tenants x ({capacity.pool_size} + "
                     f"{capacity.max_overflow}) = {capacity.worst_case} of the "
                     f"{capacity.server_available} connections the server accepts")
