"""Pool and connection reporting, and idle-connection cleanup.

For applications, in-process::

    from docex_ops.pools import render_pool_report
    print(render_pool_report())            # the table `docex-ops pools report` prints
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops import lazy_exports

if TYPE_CHECKING:
    from docex_ops.cli.pools_render import render_pool_report, render_report
    from docex_ops.pools.close_idle import (
        CloseIdleResult,
        IdleConnection,
        find_idle,
        parse_duration,
        terminate,
    )
    from docex_ops.pools.report import PoolReport, TenantUsage, build_report, pool_report

__all__ = ["CloseIdleResult", "IdleConnection", "PoolReport", "TenantUsage", "build_report",
           "find_idle", "parse_duration", "pool_report", "render_pool_report", "render_report",
           "terminate"]
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(["CloseIdleResult", "IdleConnection", "find_idle", "parse_duration",
                     "terminate"], "docex_ops.pools.close_idle"),
    **dict.fromkeys(["PoolReport", "TenantUsage", "build_report", "pool_report"],
                    "docex_ops.pools.report"),
    **dict.fromkeys(["render_pool_report", "render_report"], "docex_ops.cli.pools_render"),
})
