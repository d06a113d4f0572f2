"""Where tenants can move between servers (several servers): each server's logical
replication settings, which online moves need (``tenants move`` without --offline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext

_SETTINGS = ("SELECT current_setting('wal_level'), current_setting('max_replication_slots')"
             "::int, current_setting('max_wal_senders')::int")


def check_replication(ctx: DoctorContext) -> list[DoctorRow]:
    if len(ctx.manager.servers) < 2:
        return []  # one server: no moves, nothing to replicate
    rows = []
    for name, backend in ctx.reachable_postgres.items():
        with backend.admin_engine.connect() as conn:
            wal_level, slots, senders = conn.exec_driver_sql(_SETTINGS).one()
            conn.rollback()
        problems = []
        if wal_level != "logical":
            problems.append(f"wal_level is {wal_level}, not logical")
        if slots < 1:
            problems.append("max_replication_slots is 0")
        if senders < 1:
            problems.append("max_wal_senders is 0")
        rows.append(DoctorRow(
            "replication", ctx.where(name), WARN if problems else PASS,
            "; ".join(problems) + ": online moves to or from it fail (set them and "
            "restart, or move with --offline)" if problems else
            f"wal_level logical, {slots} replication slot(s), {senders} WAL sender(s)"))
    return rows
