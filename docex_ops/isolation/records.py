"""``verify-isolation --record``: a run's results kept in the control schema/file, so
``metrics`` and the report can show the last audit without running it again.

Kept small whatever the fleet: the results counted per check and status, and at most
FAILED_LIMIT FAIL/WARN findings (FAILs first). Tables of their own (created on the first
record, as migrate/runs.py does), so the run records are never altered.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
)

from docex_ops.isolation.results import SEVERITY, Status
from docex_ops.migrate.servers import control_backend
from docex_ops.observe.snapshot import FAILED_LIMIT, IsolationFinding, IsolationRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from docex_ops.isolation.run import IsolationReport
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

isolation_metadata = MetaData()

isolation_runs = Table(
    "isolation_runs", isolation_metadata,
    Column("record_id", String(36), primary_key=True),
    Column("recorded_at", DateTime, nullable=False),  # UTC, naive
    Column("backend", String(20), nullable=False),
    Column("tenants_checked", Integer, nullable=False),
    Column("seconds", Float, nullable=False),
)

isolation_run_counts = Table(
    "isolation_run_counts", isolation_metadata,
    Column("record_id", String(36), primary_key=True),
    Column("check_name", String(64), primary_key=True),
    Column("status", String(8), primary_key=True),   # pass | warn | fail
    Column("results", Integer, nullable=False),
)

isolation_run_findings = Table(
    "isolation_run_findings", isolation_metadata,
    Column("record_id", String(36), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("check_name", String(64), nullable=False),
    Column("status", String(8), nullable=False),     # warn | fail
    Column("tenant_id", String(64), nullable=False),  # or "*": the deployment
    Column("object", Text, nullable=False),
    Column("detail", Text, nullable=False),
)


def record_report(manager: TenantDatabaseManager, report: IsolationReport,
                  limit: int = FAILED_LIMIT) -> str:
    """Store ``report`` in the control schema/file; returns the record's id."""
    engine = control_backend(manager).control_engine()
    isolation_metadata.create_all(engine, checkfirst=True)
    record_id = str(uuid.uuid4())
    counts = Counter((r.check, str(r.status).lower()) for r in report.results)
    worst_first = sorted((r for r in report.results if r.status != Status.PASS),
                         key=lambda r: (-SEVERITY[r.status], r.check, r.tenant, r.object))
    with engine.begin() as conn:
        conn.execute(insert(isolation_runs).values(
            record_id=record_id, recorded_at=datetime.now(UTC).replace(tzinfo=None),
            backend=report.backend, tenants_checked=report.tenants_checked,
            seconds=round(report.seconds, 3)))
        if counts:
            conn.execute(insert(isolation_run_counts), [
                {"record_id": record_id, "check_name": check, "status": status, "results": n}
                for (check, status), n in sorted(counts.items())])
        if worst_first[:limit]:
            conn.execute(insert(isolation_run_findings), [
                {"record_id": record_id, "seq": i, "check_name": r.check,
                 "status": str(r.status).lower(), "tenant_id": r.tenant, "object": r.object,
                 "detail": r.detail} for i, r in enumerate(worst_first[:limit])])
    return record_id


def last_record(engine: Engine) -> IsolationRecord | None:
    """The newest record, or None when none was ever made (nothing is created here)."""
    with engine.connect() as conn:
        schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
        if not inspect(conn).has_table(isolation_runs.name, schema=schema):
            return None
        run = conn.execute(select(isolation_runs).order_by(
            isolation_runs.c.recorded_at.desc()).limit(1)).mappings().first()
        if run is None:
            return None
        record_id = run["record_id"]
        counts = {(c, s): int(n) for c, s, n in conn.execute(
            select(isolation_run_counts.c.check_name, isolation_run_counts.c.status,
                   isolation_run_counts.c.results)
            .where(isolation_run_counts.c.record_id == record_id))}
        t = isolation_run_findings.c
        findings = [IsolationFinding(c, s, tenant, obj, detail) for c, s, tenant, obj, detail
                    in conn.execute(select(t.check_name, t.status, t.tenant_id, t.object,
                                           t.detail).where(t.record_id == record_id)
                                    .order_by(t.seq))]
    recorded_at = run["recorded_at"].replace(tzinfo=UTC)
    return IsolationRecord(recorded_at, counts, findings)
