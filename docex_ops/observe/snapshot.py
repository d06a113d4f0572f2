"""The fleet at one moment: what ``metrics`` and ``report --html`` both render.

Built by ``observe.collect`` from set-based reads (one catalog query per server, the
control schema/file's run and isolation records, a backup folder's manifests); it
reuses the result objects the other commands already return (``StatusReport``,
``PoolReport``) so that a number means the same thing in a table, in JSON, in a metric
and on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docex_ops.migrate.plan import StatusReport
    from docex_ops.pools.report import PoolReport

# The most failed tenants a run or an isolation record carries into the snapshot: a
# gauge per failed tenant must stay bounded when a bad deploy fails thousands.
FAILED_LIMIT = 50


@dataclass(frozen=True)
class FailedTenant:
    tenant_id: str
    error: str | None


@dataclass(frozen=True)
class RunFact:
    """One migration run from the control schema/file's run records."""

    run_id: str
    action: str
    target: str
    status: str                      # running | done | failed | ...
    started_at: datetime             # UTC, naive as stored
    finished_at: datetime | None
    tenants: dict[str, int]          # tenant status (done, failed, ...) -> how many
    failed: list[FailedTenant] = field(default_factory=list)  # at most FAILED_LIMIT

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)  # one per tenant: 10,000 at once
class BackupFact:
    """A tenant's copies in the backup folder (``--backups DIR``)."""

    tenant_id: str
    newest_at: datetime | None           # newest archive's finished_at, UTC
    newest_verified_at: datetime | None  # newest archive that checks out; None: none does
    archives: int


@dataclass(frozen=True)
class IsolationFinding:
    check: str
    status: str                      # fail | warn
    tenant_id: str
    object: str
    detail: str


@dataclass(frozen=True)
class IsolationRecord:
    """The last ``verify-isolation --record`` run."""

    recorded_at: datetime
    counts: dict[tuple[str, str], int]   # (check, status) -> how many results
    findings: list[IsolationFinding] = field(default_factory=list)  # fail/warn, bounded


@dataclass(frozen=True)
class FleetSnapshot:
    taken_at: datetime                   # UTC
    backend: str                         # postgresql | sqlite
    status: StatusReport                 # every tenant's revision, state and server
    behind_by: dict[str, int]            # tenant -> revisions behind head (behind ones)
    sizes: dict[str, int]                # tenant -> bytes on disk
    runs: list[RunFact]                  # newest first
    pools: PoolReport | None             # None where it could not be read (problems says)
    isolation: IsolationRecord | None    # None: never recorded
    backups: dict[str, BackupFact] | None = None  # None: no --backups folder given
    backups_dir: str | None = None
    stale_after_s: float = 86400.0       # a backup older than this is stale
    problems: list[str] = field(default_factory=list)  # what could not be read, and why
    seconds: float | None = None         # how long collecting it took

    @property
    def servers(self) -> dict[str, str] | None:
        """tenant -> server; None with one server."""
        return self.status.servers
