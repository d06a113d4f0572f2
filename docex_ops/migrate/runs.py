"""Durable record of migration runs, in docex-ops' control schema/file.

Written on its own connection, outside the tenants' transactions, so a
tenant that rolls back (or a runner that is killed) still leaves its row.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from docex_ops.migrate.tenant import TenantResult, TenantStep

control_metadata = MetaData()

migration_runs = Table(
    "migration_runs", control_metadata,
    Column("run_id", String(36), primary_key=True),
    Column("action", String(20), nullable=False),
    Column("target", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(20), nullable=False),
    Column("options", JSON),
)

migration_run_tenants = Table(
    "migration_run_tenants", control_metadata,
    Column("run_id", String(36), primary_key=True),
    Column("tenant_id", String(48), primary_key=True),
    Column("status", String(20), nullable=False),  # pending | done | skipped | failed
    Column("from_rev", String(64)),
    Column("to_rev", String(64)),
    Column("seconds", Float),
    Column("error", Text),
    Column("updated_at", DateTime, nullable=False),
)

# Tenants tried more than once (lock retries): a table of its own, so run records made
# before it existed stay readable (create_all adds it, never alters the one above).
migration_run_attempts = Table(
    "migration_run_attempts", control_metadata,
    Column("run_id", String(36), primary_key=True),
    Column("tenant_id", String(48), primary_key=True),
    Column("attempts", Integer, nullable=False),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    action: str
    target: str
    actor: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, int]


class RunStore:
    """Create, update and read run records.

    Per-tenant results are written in batches (every FLUSH_ROWS results or
    FLUSH_SECONDS): one commit per tenant would cost as much as the migration
    of a small revision. A result lost to a crash before its flush is harmless:
    resume re-reads every tenant's revision and skips those already there.
    """

    FLUSH_ROWS = 100
    FLUSH_SECONDS = 1.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._flushed_at = time.monotonic()
        control_metadata.create_all(engine, checkfirst=True)

    def start(self, action: str, target: str, actor: str, steps: Sequence[TenantStep],
              options: dict[str, Any], run_id: str | None = None) -> str:
        """Record a run and every tenant it will visit as pending; returns the run id."""
        now = _now()
        with self.engine.begin() as conn:
            if run_id is None:
                run_id = str(uuid.uuid4())
                conn.execute(insert(migration_runs).values(
                    run_id=run_id, action=action, target=target, actor=actor, started_at=now,
                    status="running", options=options))
            else:
                conn.execute(update(migration_runs).where(migration_runs.c.run_id == run_id)
                             .values(status="running", finished_at=None))
                conn.execute(migration_run_tenants.delete().where(
                    migration_run_tenants.c.run_id == run_id,
                    migration_run_tenants.c.tenant_id.in_([s.tenant_id for s in steps])))
            if steps:
                conn.execute(insert(migration_run_tenants), [
                    {"run_id": run_id, "tenant_id": s.tenant_id, "status": "pending",
                     "from_rev": s.current, "to_rev": s.target, "updated_at": now}
                    for s in steps])
        return run_id

    def record(self, run_id: str, result: TenantResult) -> None:
        row = {"b_run": run_id, "b_tenant": result.tenant_id, "status": result.status,
               "from_rev": result.from_rev, "to_rev": result.to_rev,
               "seconds": round(result.seconds, 4), "error": result.error,
               "updated_at": _now()}
        if result.attempts > 1:
            self._record_attempts(run_id, result)
        with self._lock:
            self._pending.setdefault(run_id, []).append(row)
            due = (len(self._pending[run_id]) >= self.FLUSH_ROWS
                   or time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS)
            if due:
                self._flush(run_id)

    def _record_attempts(self, run_id: str, result: TenantResult) -> None:
        table = migration_run_attempts
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.run_id == run_id,
                                              table.c.tenant_id == result.tenant_id))
            conn.execute(insert(table).values(run_id=run_id, tenant_id=result.tenant_id,
                                              attempts=result.attempts))

    def attempts(self, run_id: str) -> dict[str, int]:
        """Tenant -> attempts, for the tenants of a run tried more than once."""
        table = migration_run_attempts
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.tenant_id, table.c.attempts).where(
                table.c.run_id.startswith(run_id))).all()
        return {tenant: int(n) for tenant, n in rows}

    def _flush(self, run_id: str) -> None:
        rows = self._pending.pop(run_id, [])
        self._flushed_at = time.monotonic()
        if not rows:
            return
        statement = update(migration_run_tenants).where(
            migration_run_tenants.c.run_id == bindparam("b_run"),
            migration_run_tenants.c.tenant_id == bindparam("b_tenant"))
        with self.engine.begin() as conn:
            conn.execute(statement, rows)

    def finish(self, run_id: str, status: str) -> None:
        with self._lock:
            self._flush(run_id)
        with self.engine.begin() as conn:
            conn.execute(update(migration_runs).where(migration_runs.c.run_id == run_id)
                         .values(status=status, finished_at=_now()))

    def get(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        with self.engine.connect() as conn:
            run = conn.execute(select(migration_runs).where(
                migration_runs.c.run_id.startswith(run_id))).mappings().all()
            if len(run) != 1:
                raise LookupError(f"migration run {run_id!r} "
                                  f"{'is ambiguous' if run else 'does not exist'}")
            tenants = conn.execute(select(migration_run_tenants).where(
                migration_run_tenants.c.run_id == run[0]["run_id"]).order_by(
                migration_run_tenants.c.tenant_id)).mappings().all()
        return dict(run[0]), [dict(t) for t in tenants]

    def list(self, limit: int = 20) -> list[RunSummary]:
        with self.engine.connect() as conn:
            runs = conn.execute(select(migration_runs).order_by(
                migration_runs.c.started_at.desc()).limit(limit)).mappings().all()
            summaries = []
            for run in runs:
                statuses = conn.execute(select(migration_run_tenants.c.status).where(
                    migration_run_tenants.c.run_id == run["run_id"])).scalars().all()
                counts: dict[str, int] = {}
                for s in statuses:
                    counts[s] = counts.get(s, 0) + 1
                summaries.append(RunSummary(run["run_id"], run["action"], run["target"],
                                            run["actor"], run["started_at"],
                                            run["finished_at"], run["status"], counts))
        return summaries
