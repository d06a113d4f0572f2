"""Where tenants can move between servers (several servers): each server's logical
replication settings, which online moves need (``tenants move`` without --offline), and
no inactive replication slot holding WAL (a FAIL: the disk fills)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import FAIL, PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext

_SETTINGS = ("SELECT current_setting('wal_level'), current_setting('max_replication_slots')"
             "::int, current_setting('max_wal_senders')::int")


# Slots nobody streams from that still hold WAL back: the server keeps every WAL file
# since their restart_lsn, so its disk fills (a move killed mid-way leaves its slot).
_IDLE_SLOTS = """
SELECT slot_name, slot_type,
       pg_size_pretty(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery()
                                           THEN pg_last_wal_replay_lsn()
                                           ELSE pg_current_wal_lsn() END, restart_lsn))
  FROM pg_replication_slots
 WHERE NOT active AND restart_lsn IS NOT NULL
 ORDER BY 1"""


def check_replication(ctx: DoctorContext) -> list[DoctorRow]:
    if len(ctx.manager.servers) < 2:
        return []  # one server: no moves, nothing to replicate
    rows = []
    for name, backend in ctx.reachable_postgres.items():
        with backend.admin_engine.connect() as conn:
            wal_level, slots, senders = conn.exec_driver_sql(_SETTINGS).one()
            idle = conn.exec_driver_sql(_IDLE_SLOTS).all()
            conn.rollback()
        problems = []
        if wal_level != "logical":
            problems.append(f"wal_level is {wal_level}, not logical")
        if slots < 1:
            problems.append("max_replication_slots is 0")
        if senders < 1:
            problems.append("max_wal_senders is 0")
        settings = ("; ".join(problems) + ": online moves to or from it fail (set them and "
                    "restart, or move with --offline)") if problems else ""
        if idle:
            rows.append(DoctorRow("replication", ctx.where(name), FAIL, "; ".join(
                f"inactive replication slot {slot} ({kind}) holds {size} of WAL"
                for slot, kind, size in idle)
                + ": the server keeps all WAL from there on until it is dropped, and its "
                "disk fills; if nothing will stream from it again, drop it: "
                + " ".join(f"SELECT pg_drop_replication_slot('{slot}');" for slot, _, _ in idle)
                + (f"; also {settings}" if settings else "")))
            continue
        rows.append(DoctorRow(
            "replication", ctx.where(name), WARN if problems else PASS,
            settings or f"wal_level logical, {slots} replication slot(s), {senders} WAL "
            "sender(s), none inactive"))
    return rows
