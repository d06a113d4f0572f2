"""``verify-isolation --record``: a run's results kept in the control schema/file, so
``metrics`` and the report can show the last audit without running it again.

Kept small whatever the fleet: the results counted per check and status, and at most
FAILED_LIMIT FAIL/WARN findings (FAILs first). Tables of their own (created on the first
record, as migrate/runs.py does), so the run records are never altered; a snapshot reads
the last record without SQLAlchemy (observe/control_reads.py).
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
)

from docex_ops.isolation.results import SEVERITY, Status
from docex_ops.migrate.servers import control_backend
from docex_ops.observe.snapshot import FAILED_LIMIT

if TYPE_CHECKING:
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
