"""Hand-built fleet snapshots for the HTML report's tests, and the checks of a page that
must not reach the network."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from docex_ops.migrate.plan import StatusReport, TenantStatus
from docex_ops.observe.snapshot import (
    BackupFact,
    FailedTenant,
    FleetSnapshot,
    IsolationFinding,
    IsolationRecord,
    RunFact,
)
from docex_ops.pools.capacity import Capacity
from docex_ops.pools.report import PoolReport, ServerUsage

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
HEAD = "0003_object_paths"


def snapshot(tenants: int = 3, hostile: str = "plain", **changes: Any) -> FleetSnapshot:
    """``tenants`` tenants t0.. at head but t1 (behind by one), a failed last run
    (t1, error ``hostile``), t2's backup two days old, and an isolation failure."""
    ids = [f"t{n}" for n in range(tenants)]
    rows = [TenantStatus(t, f"schema {t}", "0002_docex_2_9_9" if t == "t1" else HEAD,
                         "behind" if t == "t1" else "current") for t in ids]
    naive = NOW.replace(tzinfo=None)
    run = RunFact("run_bad", "upgrade", "head", "failed", naive - timedelta(minutes=5),
                  naive - timedelta(minutes=4), {"done": tenants - 1, "failed": 1},
                  [FailedTenant("t1", hostile)])
    usage = ServerUsage(100, 3, 0, 97, 12, 4, 8)
    capacity = Capacity(tenants, 5, 10, tenants * 15, None, "derived", 97, tenants * 15 > 97)
    pools = PoolReport("postgresql", "pg", NOW, capacity, {}, [], server=usage)
    backups = {t: BackupFact(t, NOW - timedelta(hours=2), NOW - timedelta(hours=2), 1)
               for t in ids}
    if "t2" in backups:
        old = NOW - timedelta(days=2)
        backups["t2"] = BackupFact("t2", old, old, 3)
    isolation = IsolationRecord(naive, {("schema_acl", "fail"): 1, ("schema_acl", "pass"): 2},
                                [IsolationFinding("schema_acl", "fail", "t0", "public",
                                                  hostile)])
    fields: dict[str, Any] = dict(
        taken_at=NOW, backend="postgresql", status=StatusReport(HEAD, rows),
        behind_by={"t1": 1} if "t1" in ids else {},
        sizes={t: (n + 1) * 3_000_000 for n, t in enumerate(ids)}, runs=[run], pools=pools,
        isolation=isolation, backups=backups, backups_dir="/backups", stale_after_s=86400.0)
    fields.update(changes)
    return FleetSnapshot(**fields)


# src=, href=, url(, srcset, @import, or a bare address anywhere that leaves the page.
_NETWORK = re.compile(r"""(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*"""
                      r"""(?:https?:|wss?:|ftp:|//)|url\(\s*["']?\s*(?:https?:|wss?:|//)|"""
                      r"""@import""", re.IGNORECASE)


def network_references(html: str) -> list[str]:
    """Every attribute or CSS reference of the page that would fetch from a network."""
    return [m.group(0) for m in _NETWORK.finditer(html)]
