"""``collect``: the fleet snapshot, read set-based (never a query per tenant).

One discovery per server gives every tenant's revision, state and place, and one more
catalog query per server its size (observe/sizes.py: per kind); the pool
report is built from that same discovery (each server's limits and connections, once);
the control schema/file gives the newest runs (three grouped queries) and the last
isolation record (observe/control_reads.py, without SQLAlchemy); a backup folder gives
its manifests (stat only, see observe/backups.py).
Whatever part cannot be read becomes a line in ``problems`` and the rest is still
returned: a scrape that fails whole shows nothing at the moment things go wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from docex_ops.backends.base import UNREADABLE, TenantInfo
from docex_ops.migrate.plan import StatusReport, status_of
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.migrate.servers import servers_of
from docex_ops.observe.control import open_control
from docex_ops.observe.sizes import discover_sized
from docex_ops.observe.snapshot import FAILED_LIMIT, FailedTenant, FleetSnapshot, RunFact
from docex_ops.topology.base import Discovery

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.observe.backups import FolderRead
    from docex_ops.observe.snapshot import BackupFact, IsolationRecord
    from docex_ops.pools.report import PoolReport

T = TypeVar("T")


def collect(manager: TenantDatabaseManager, backups: Path | None = None,
            stale_after_s: float = 86400.0, runs: int = 10) -> FleetSnapshot:
    """The fleet now: tenants, runs, connections, isolation and (with ``backups``) backups."""
    started = time.perf_counter()
    taken_at = datetime.now(UTC)
    problems: list[str] = []
    scripts = MigrationScripts()
    sized = _guarded("tenants", problems, lambda: discover_sized(manager))
    # The folder is read once the discovery is done, not while the servers answer: its
    # per-tenant facts and the discovery's own transient records were the peak together
    # (at 10,000 tenants 1.7 MB more, for 0.3-0.7 s saved).
    folder = None if backups is None else _read_folder(manager, backups, problems)
    found, sizes = sized if sized is not None else (Discovery(), {})
    report = status_of(scripts, found.tenants)
    status = StatusReport(report.head, report.tenants, found.problems,
                          servers_of(manager, found.tenants))
    problems += [f"placement: {p.message}" for p in found.problems]
    problems += [f"tenant {t.tenant_id}: {t.state}: {t.detail}" for t in status.tenants
                 if t.state in UNREADABLE]
    snapshot = FleetSnapshot(
        taken_at=taken_at, backend=manager.backend.kind, status=status,
        behind_by=behind_by(scripts, status),
        sizes=sizes,
        runs=_guarded("migration runs", problems, lambda: newest_runs(manager, runs)) or [],
        pools=_guarded("connections", problems, lambda: _pools(manager, found)),
        isolation=_guarded("isolation record", problems, lambda: _isolation(manager)),
        backups=None if folder is None else _backups(folder, found.tenants, problems),
        backups_dir=None if backups is None else str(backups),
        stale_after_s=stale_after_s, problems=problems)
    return replace(snapshot, seconds=round(time.perf_counter() - started, 6))


def behind_by(scripts: MigrationScripts, status: StatusReport) -> dict[str, int]:
    """Tenant -> revisions behind head, for the tenants at a known older revision."""
    position = {rev: i for i, rev in enumerate(scripts.order, 1)}
    head = len(scripts.order)
    return {t.tenant_id: head - position[t.revision] for t in status.tenants
            if t.state == "behind" and t.revision in position}


def newest_runs(manager: TenantDatabaseManager, limit: int) -> list[RunFact]:
    from docex_ops.observe.control_reads import newest_runs as read

    with open_control(manager) as reader:
        digests = read(reader, limit, FAILED_LIMIT)
    return [RunFact(d.run_id, d.action, d.target, d.status, d.started_at, d.finished_at,
                    d.counts, [FailedTenant(t, e) for t, e in d.failed]) for d in digests]


def _pools(manager: TenantDatabaseManager, found: Discovery) -> PoolReport:
    # The discovery already made: build_report would discover every server again.
    from docex_ops.pools.report import REPORTS

    # This process' own pools say nothing about the fleet (it opens no tenant engine).
    return REPORTS.for_kind(manager.backend.kind)(manager, found, {})


def _isolation(manager: TenantDatabaseManager) -> IsolationRecord | None:
    from docex_ops.observe.control_reads import last_isolation_record

    with open_control(manager) as reader:
        return last_isolation_record(reader)


def _read_folder(manager: TenantDatabaseManager, folder: Path, problems: list[str]
                 ) -> FolderRead | None:
    from docex_ops.backup.signing import signing_key
    from docex_ops.observe.backups import read_folder

    try:
        key = signing_key(manager.settings)
    except Exception as exc:  # noqa: BLE001 - reported; unsigned copies must not pass
        problems.append(f"backups: the signing key cannot be read, so no copy is judged: "
                        f"{' '.join(str(exc).split())}"[:500])
        return None
    return _guarded("backups", problems, lambda: read_folder(folder, key))


def _backups(folder: FolderRead, tenants: list[TenantInfo], problems: list[str]
             ) -> dict[str, BackupFact] | None:
    from docex_ops.observe.backups import facts_for

    scan = facts_for(folder, [t.tenant_id for t in tenants])
    problems += scan.problems
    return scan.facts


def _guarded(what: str, problems: list[str], read: Callable[[], T]) -> T | None:
    """``read()``, or None with the reason in ``problems``: one part of the fleet that
    cannot be read (a server down, a control table missing) never hides the rest."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - reported in the snapshot, never raised
        problems.append(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}"[:500])
        return None
