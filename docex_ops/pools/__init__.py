"""Pool and connection reporting, and idle-connection cleanup.

For applications, in-process::

    from docex_ops.pools import render_pool_report
    print(render_pool_report())            # the table `docex-ops pools report` prints
"""

from __future__ import annotations

from docex_ops.manager import TenantDatabaseManager
from docex_ops.pools.close_idle import (
    CloseIdleResult,
    IdleConnection,
    find_idle,
    parse_duration,
    terminate,
)
from docex_ops.pools.render import render_report
from docex_ops.pools.report import PoolReport, TenantUsage, build_report


def pool_report(manager: TenantDatabaseManager | None = None) -> PoolReport:
    """The report for ``manager`` (default: the process' singleton), as data."""
    return build_report(manager or TenantDatabaseManager())


def render_pool_report(manager: TenantDatabaseManager | None = None, fmt: str = "table") -> str:
    """The same report `docex-ops pools report` prints, joined with this process' pools."""
    return render_report(pool_report(manager), fmt)


__all__ = ["CloseIdleResult", "IdleConnection", "PoolReport", "TenantUsage", "build_report",
           "find_idle", "parse_duration", "pool_report", "render_pool_report", "render_report",
           "terminate"]
