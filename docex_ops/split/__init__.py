"""Split a single-tenant DocEX database into per-tenant schemas or files.

- ``make_plan``: who receives which rows, and the problems that stop the split;
- ``run_split``: one source snapshot, one verified transaction per tenant;
- ``verify_split``: re-check finished tenants against the source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops import lazy_exports

if TYPE_CHECKING:
    from docex_ops.split.copy import RunSettings, SplitReport, TenantSplit, run_split
    from docex_ops.split.mapping import BasketMapping, MappingError, load_mapping
    from docex_ops.split.plan import CHOICES, PlanOptions, Problem, SplitPlan, make_plan, plan_split
    from docex_ops.split.source import open_source
    from docex_ops.split.verify import VerifyReport, verify_split

__all__ = [
    "BasketMapping", "CHOICES", "MappingError", "PlanOptions", "Problem", "RunSettings",
    "SplitPlan", "SplitReport", "TenantSplit", "VerifyReport", "load_mapping", "make_plan",
    "open_source", "plan_split", "run_split", "verify_split"
]
__getattr__ = lazy_exports(__name__, {
    "BasketMapping": "docex_ops.split.mapping",
    "CHOICES": "docex_ops.split.plan",
    "MappingError": "docex_ops.split.mapping",
    "PlanOptions": "docex_ops.split.plan",
    "Problem": "docex_ops.split.plan",
    "RunSettings": "docex_ops.split.copy",
    "SplitPlan": "docex_ops.split.plan",
    "SplitReport": "docex_ops.split.copy",
    "TenantSplit": "docex_ops.split.copy",
    "VerifyReport": "docex_ops.split.verify",
    "load_mapping": "docex_ops.split.mapping",
    "make_plan": "docex_ops.split.plan",
    "open_source": "docex_ops.split.source",
    "plan_split": "docex_ops.split.plan",
    "run_split": "docex_ops.split.copy",
    "verify_split": "docex_ops.split.verify",
})
