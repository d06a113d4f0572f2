"""Isolation verification: prove no tenant can reach another tenant's data.

``verify_isolation`` (run.py) runs every check registered for the database
kind (registry.py: one module per check, pg_* and sqlite_*); docs/isolation.md
is the threat model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops import lazy_exports

if TYPE_CHECKING:
    from docex_ops.isolation.registry import CHECKS
    from docex_ops.isolation.results import CheckResult, Status
    from docex_ops.isolation.run import IsolationReport, select_checks, verify_isolation

__all__ = ["CHECKS", "CheckResult", "IsolationReport", "Status", "select_checks",
           "verify_isolation"]
__getattr__ = lazy_exports(__name__, {
    "CHECKS": "docex_ops.isolation.registry",
    "CheckResult": "docex_ops.isolation.results",
    "Status": "docex_ops.isolation.results",
    "IsolationReport": "docex_ops.isolation.run",
    "select_checks": "docex_ops.isolation.run",
    "verify_isolation": "docex_ops.isolation.run",
})
