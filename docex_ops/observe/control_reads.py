"""What a snapshot reads from the control schema/file: the newest migration runs (the
runs, their tenants counted per status, the first failed tenants of each: three queries
whatever the runs' size) and the last isolation record. Plain SQL on a ``ControlReader``
against the tables migrate/runs.py and isolation/records.py define (their names are
checked equal by the tests), so reading them never loads SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from docex_ops.observe.control import ControlReader, stored_time
from docex_ops.observe.snapshot import IsolationFinding, IsolationRecord

RUNS, RUN_TENANTS = "migration_runs", "migration_run_tenants"
ISOLATION_RUNS = "isolation_runs"
ISOLATION_COUNTS, ISOLATION_FINDINGS = "isolation_run_counts", "isolation_run_findings"


@dataclass(frozen=True)
class RunDigest:
    run_id: str
    action: str
    target: str
    status: str
    started_at: datetime                  # UTC, naive as stored
    finished_at: datetime | None
    counts: dict[str, int]                # tenant status -> how many
    failed: list[tuple[str, str | None]]  # (tenant, error), the first by tenant id


def newest_runs(reader: ControlReader, limit: int, failed_limit: int) -> list[RunDigest]:
    """The ``limit`` newest runs, newest first; no run table yet: none."""
    if limit < 1 or not reader.has(RUNS):
        return []
    runs, tenants = reader.name(RUNS), reader.name(RUN_TENANTS)
    newest = (f"SELECT run_id, action, target, status, started_at, finished_at FROM {runs} "
              f"ORDER BY started_at DESC LIMIT {int(limit)}")
    found = reader.rows(newest)
    counts: dict[str, dict[str, int]] = {r[0]: {} for r in found}
    failed: dict[str, list[tuple[str, str | None]]] = {r[0]: [] for r in found}
    if found and reader.has(RUN_TENANTS):
        for run_id, status, n in reader.rows(
                f"SELECT t.run_id, t.status, count(*) FROM ({newest}) r "
                f"JOIN {tenants} t ON t.run_id = r.run_id GROUP BY t.run_id, t.status"):
            counts[run_id][status] = int(n)
        for run_id, tenant_id, error in reader.rows(
                "SELECT run_id, tenant_id, error FROM (SELECT t.run_id, t.tenant_id, "
                "t.error, row_number() OVER (PARTITION BY t.run_id ORDER BY t.tenant_id) "
                f"AS n FROM ({newest}) r JOIN {tenants} t ON t.run_id = r.run_id "
                f"WHERE t.status = 'failed') f WHERE n <= {int(failed_limit)} "
                "ORDER BY run_id, tenant_id"):
            failed[run_id].append((tenant_id, error))
    return [RunDigest(run_id, action, target, status, stored_time(started),
                      stored_time(finished) if finished is not None else None,
                      counts[run_id], failed[run_id])
            for run_id, action, target, status, started, finished in found]


def last_isolation_record(reader: ControlReader) -> IsolationRecord | None:
    """The newest ``verify-isolation --record`` run; never recorded: None."""
    if not reader.has(ISOLATION_RUNS):
        return None
    last = (f"SELECT record_id FROM {reader.name(ISOLATION_RUNS)} "
            "ORDER BY recorded_at DESC LIMIT 1")
    found = reader.rows(f"SELECT record_id, recorded_at FROM {reader.name(ISOLATION_RUNS)} "
                        f"WHERE record_id = ({last})")
    if not found:
        return None
    counts = {(check, status): int(n) for check, status, n in reader.rows(
        f"SELECT check_name, status, results FROM {reader.name(ISOLATION_COUNTS)} "
        f"WHERE record_id = ({last})")}
    findings = [IsolationFinding(*row) for row in reader.rows(
        f"SELECT check_name, status, tenant_id, object, detail FROM "
        f"{reader.name(ISOLATION_FINDINGS)} WHERE record_id = ({last}) ORDER BY seq")]
    return IsolationRecord(stored_time(found[0][1]).replace(tzinfo=UTC), counts, findings)
