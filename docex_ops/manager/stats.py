"""The numbers ``pool_stats()`` and ``budget_stats()`` report, from the manager's engines
and budgets (kept out of tenant_manager.py, which owns the engines themselves)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from docex_ops.manager.budget import EngineTracker


def engine_stats(engine: Engine, tracker: EngineTracker, server: str, created_at: float,
                 last_used: float) -> dict[str, Any]:
    """One tenant engine's pool: size, checked out, overflow, open and idle connections,
    last used (epoch seconds), age (seconds) and its server (monotonic times in)."""
    from sqlalchemy.pool import QueuePool

    now, wall = time.monotonic(), time.time()
    pool = engine.pool
    queue = pool if isinstance(pool, QueuePool) else None
    checked_out = queue.checkedout() if queue else 0
    return {
        "pool_size": queue.size() if queue else 0,
        "checked_out": checked_out,
        "overflow": max(queue.overflow(), 0) if queue else 0,
        "open": tracker.open,
        # Open connections waiting in the pool (a checked-in slot whose connection was
        # closed to free the budget is not counted).
        "idle": max(tracker.open - checked_out, 0),
        "last_used": wall - (now - last_used),
        "engine_age_s": round(now - created_at, 3),
        "server": server,
    }


def summed(per_server: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One server: its budget's numbers. Several: the sums (limit None until every
    server's is known; peak is the sum of the servers' peaks) and ``servers``."""
    if len(per_server) == 1:
        return next(iter(per_server.values()))
    limits = [stats["limit"] for stats in per_server.values()]
    total: dict[str, Any] = {"limit": None if None in limits else sum(limits)}
    for key in ("open", "peak", "waiting", "timeouts"):
        total[key] = sum(stats[key] for stats in per_server.values())
    return total | {"servers": per_server}
