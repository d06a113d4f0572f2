"""The worst case the configuration allows, against what the server accepts."""

from __future__ import annotations

from dataclasses import dataclass, field

from docex_ops.backends.base import ServerLimits
from docex_ops.config.settings import PoolSettings
from docex_ops.manager.budget import derive_budget


@dataclass(frozen=True)
class Capacity:
    tenants: int
    pool_size: int
    max_overflow: int
    worst_case: int                  # tenants x (pool_size + max_overflow)
    budget: int | None               # max_total_connections of one process
    budget_source: str               # configured | derived | unbounded
    server_available: int | None     # None: no server (SQLite)
    exceeds: bool                    # the worst case can exceed what the server accepts
    recommended_budget: int | None = None
    recommended_pool_size: int | None = None
    recommended_max_overflow: int | None = None
    warnings: list[str] = field(default_factory=list)


def assess_capacity(pool: PoolSettings, tenants: int, budget: int | None, budget_source: str,
                    limits: ServerLimits | None) -> Capacity:
    """Compare tenants x (pool_size + max_overflow) with the server's limit.

    The recommendation keeps every tenant's pool within a fair share of the
    recommended budget (the derived default: what the server accepts minus a
    reserve), so even processes without a budget cannot exhaust the server.
    """
    per_tenant = pool.pool_size + pool.max_overflow
    worst = tenants * per_tenant
    if limits is None:
        return Capacity(tenants, pool.pool_size, pool.max_overflow, worst, budget,
                        budget_source, None, False)
    available = limits.available
    warnings = []
    if budget is not None and budget > available:
        warnings.append(f"database.max_total_connections is {budget} but the server accepts "
                        f"only {available} connections from ordinary roles")
    if worst <= available:
        return Capacity(tenants, pool.pool_size, pool.max_overflow, worst, budget,
                        budget_source, available, False, warnings=warnings)
    recommended = derive_budget(limits)
    share = recommended // tenants if tenants else recommended
    rec_size = max(1, min(pool.pool_size, share))
    rec_overflow = max(0, min(pool.max_overflow, share - rec_size))
    capped = f"; this process is capped at {budget} by the connection budget" if budget else ""
    advice = (f"set database.pool_size: {rec_size} and max_overflow: {rec_overflow}"
              if share >= 1 else
              f"{tenants} tenants cannot all hold a connection at once: keep "
              "database.max_total_connections so idle tenants hand their connections over")
    warnings.append(
        f"worst case {tenants} tenants x ({pool.pool_size} + {pool.max_overflow}) = {worst} "
        f"connections exceeds the {available} the server accepts{capped}; {advice}; "
        f"budget at most {recommended} per server, split across application processes")
    return Capacity(tenants, pool.pool_size, pool.max_overflow, worst, budget, budget_source,
                    available, True, recommended, rec_size, rec_overflow, warnings)
