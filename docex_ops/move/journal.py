"""The move journal: one row per tenant move, its last completed step, on the directory server.

A rerun reads it to finish or undo a move that a crash interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from docex_ops.topology.directory import TenantDirectory

# Steps in order; each is recorded once it is complete.
STARTED = "started"      # directory says moving; nothing made on the target yet
COPYING = "copying"      # target schema, publication and subscription exist
SYNCED = "synced"        # the initial copy is done, changes stream
VERIFIED = "verified"    # the copy equalled the source at a checkpoint; changes stream
RENAMED = "renamed"      # frozen, verified, source schema renamed: the source is closed
SWITCHED = "switched"    # the directory names the target: the move is done
STEPS = (STARTED, COPYING, SYNCED, VERIFIED, RENAMED, SWITCHED)


@dataclass(frozen=True)
class MoveRecord:
    tenant_id: str
    source: str
    target: str
    schema: str
    old_schema: str
    step: str
    started_at: datetime
    updated_at: datetime


class MoveJournal:
    def __init__(self, directory: TenantDirectory) -> None:
        self.directory = directory
        self.table = f"{directory.schema}.tenant_moves"

    def get(self, tenant_id: str, conn: Connection | None = None) -> MoveRecord | None:
        sql = (f"SELECT tenant_id, source, target, schema, old_schema, step, started_at, "
               f"updated_at FROM {self.table} WHERE tenant_id = %(t)s")
        if conn is not None:
            row = conn.exec_driver_sql(sql, {"t": tenant_id}).first()
        else:
            with self.directory.reading() as own:
                row = own.exec_driver_sql(sql, {"t": tenant_id}).first()
        return MoveRecord(*row) if row else None

    def all(self) -> list[MoveRecord]:
        with self.directory.reading() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT tenant_id, source, target, schema, old_schema, step, started_at, "
                f"updated_at FROM {self.table} ORDER BY tenant_id").all()
        return [MoveRecord(*r) for r in rows]

    def start(self, conn: Connection, record: MoveRecord) -> None:
        conn.exec_driver_sql(
            f"INSERT INTO {self.table} (tenant_id, source, target, schema, old_schema, step) "
            "VALUES (%(t)s, %(s)s, %(g)s, %(n)s, %(o)s, %(p)s)",
            {"t": record.tenant_id, "s": record.source, "g": record.target, "n": record.schema,
             "o": record.old_schema, "p": STARTED})

    def step(self, tenant_id: str, step: str, conn: Connection | None = None) -> None:
        sql = f"UPDATE {self.table} SET step = %(p)s, updated_at = now() WHERE tenant_id = %(t)s"
        if conn is not None:
            conn.exec_driver_sql(sql, {"p": step, "t": tenant_id})
            return
        with self.directory.transaction() as own:
            own.exec_driver_sql(sql, {"p": step, "t": tenant_id})

    def delete(self, conn: Connection, tenant_id: str) -> None:
        conn.exec_driver_sql(f"DELETE FROM {self.table} WHERE tenant_id = %(t)s",
                             {"t": tenant_id})
