"""Split a single-tenant DocEX database into per-tenant schemas or files.

- ``make_plan``: who receives which rows, and the problems that stop the split;
- ``run_split``: one source snapshot, one verified transaction per tenant;
- ``verify_split``: re-check finished tenants against the source.
"""

from docex_ops.split.copy import RunSettings, SplitReport, TenantSplit, run_split
from docex_ops.split.mapping import BasketMapping, MappingError, load_mapping
from docex_ops.split.plan import CHOICES, PlanOptions, Problem, SplitPlan, make_plan, plan_split
from docex_ops.split.verify import VerifyReport, verify_split

__all__ = [
    "CHOICES", "BasketMapping", "MappingError", "PlanOptions", "Problem", "RunSettings",
    "SplitPlan", "SplitReport", "TenantSplit", "VerifyReport", "load_mapping", "make_plan",
    "plan_split", "run_split", "verify_split",
]
