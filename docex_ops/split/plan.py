"""The split plan: which tenant receives which rows, and what stops the split.

Read on the source snapshot with one grouped query per table (rules.py), so
the plan costs eleven scans whatever the number of tenants.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docex_ops.backends.base import Backend
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.mapping import BasketMapping
from docex_ops.split.rules import GLOBAL_TABLES, attribution_sql, total_sql
from docex_ops.split.source import SourceView, SplitSource
from docex_ops.split.target import scratch_dir, target_store
from docex_ops.tenancy import TenantIdError, validate_tenant_id

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

SKIP = "skip"
DROP = "drop"
EDGE_TABLES = ("operation_dependencies", "doc_events")

CHOICES = {
    "--unmapped skip": "baskets no mapping entry names are left out, with their documents, "
                       "metadata, file history, operations, events and processing operations "
                       "(they are in no tenant afterwards)",
    "--unmapped TENANT": "baskets no mapping entry names go to TENANT, with everything "
                         "hanging off them",
    "--cross-tenant-edges drop": "operation_dependencies whose depends_on is another tenant's "
                                 "operation, and doc_events whose document is another tenant's, "
                                 "are not copied (they are in no tenant afterwards)",
    "global tables": "processors and transport_routes are copied whole to every tenant; "
                     "route_operations go with the document they name, and those naming no "
                     "existing document go to every tenant with their route",
    "--ignore-extra-objects": "a split reads only the rows of DocEX's 11 tables; objects of "
                              "the source besides them (functions, views, triggers, rules, "
                              "policies, types, sequences, other tables) are never read, "
                              "copied or run: with this flag they are left out, without it "
                              "they stop the split",
}
IGNORE_EXTRA = "--ignore-extra-objects"


@dataclass(frozen=True)
class PlanOptions:
    unmapped: str | None = None              # None: a problem | "skip" | a tenant id
    cross_tenant_edges: str | None = None    # None: a problem | "drop"
    ignore_extra_objects: bool = False       # objects besides DocEX's tables: left out


@dataclass(frozen=True)
class Problem:
    kind: str       # unmapped_basket | invalid_tenant | cross_tenant_dependency | ...
    message: str
    resolved_by: str | None = None   # the flag that was given, when it resolves this

    @property
    def blocking(self) -> bool:
        return self.resolved_by is None


@dataclass
class SplitPlan:
    source: str
    revision: str | None
    tenants: dict[str, list[str]]                        # tenant -> basket ids
    counts: dict[str, dict[str, int]]                    # tenant -> table -> rows
    source_counts: dict[str, int]                        # table -> rows in the source
    skipped: dict[str, int] = field(default_factory=dict)  # table -> rows left out
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drop_edges: bool = False

    @property
    def ok(self) -> bool:
        return not any(p.blocking for p in self.problems)

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]


def make_plan(view: SourceView, mapping: BasketMapping, options: PlanOptions,
              backend: Backend | None, revision: str | None) -> SplitPlan:
    problems: list[Problem] = _extra_problems(view, options)
    missing = [t for t in TABLE_NAMES if t not in view.tables()]
    if missing:
        raise LookupError(f"the source {view.prefix.rstrip('.')} is not a DocEX database: "
                          f"table(s) {', '.join(missing)} missing")
    if any(p.blocking and p.kind == "unreadable_docex_table" for p in problems):
        return SplitPlan("", revision, {}, {}, {}, problems=problems)  # read nothing more
    baskets = {str(i): str(n) for i, n, _ in view.fetch(
        "SELECT x.id, x.name, NULL FROM {s}docbasket x")}
    notes: list[str] = []
    owner = _assign(baskets, mapping, options, problems, notes)
    problems += _tenant_problems(set(owner.values()), backend)
    tenants: dict[str, list[str]] = defaultdict(list)
    for basket_id, tenant in sorted(owner.items()):
        tenants[tenant].append(basket_id)
    plan = SplitPlan("", revision, dict(sorted(tenants.items())), {}, {},
                     drop_edges=options.cross_tenant_edges == DROP, notes=notes)
    _count(view, plan, owner, baskets, problems)
    plan.problems = problems
    return plan


def _extra_problems(view: SourceView, options: PlanOptions) -> list[Problem]:
    """One problem per object of the source besides DocEX's tables (see CHOICES)."""
    problems = []
    for what, ignorable in view.extra_objects():
        if not ignorable:
            problems.append(Problem("unreadable_docex_table", f"{what}: a split reads DocEX's "
                                    "tables as plain tables; make it one, or split a copy"))
        else:
            problems.append(Problem(
                "extra_objects", f"{what} is not one of DocEX's tables"
                + ("; left out (never read, copied or run)" if options.ignore_extra_objects
                   else f"; pass {IGNORE_EXTRA} to leave it out"),
                IGNORE_EXTRA if options.ignore_extra_objects else None))
    return problems


def _assign(baskets: dict[str, str], mapping: BasketMapping, options: PlanOptions,
            problems: list[Problem], notes: list[str]) -> dict[str, str]:
    """basket id -> tenant, for every basket that is copied."""
    by_name = {name: i for i, name in baskets.items()}
    owner: dict[str, str] = {}
    for key, tenant in mapping.entries.items():
        if key in baskets and key in by_name and by_name[key] != key:
            problems.append(Problem("ambiguous_mapping", f"mapping key {key!r} is the id of one "
                                    f"basket and the name of another; use the id"))
            continue
        basket_id = key if key in baskets else by_name.get(key)
        if basket_id is None:
            notes.append(f"mapping entry {key!r} -> {tenant!r} names no basket in the source")
            continue
        owner[basket_id] = tenant
    for basket_id in sorted(set(baskets) - set(owner)):
        if mapping.default_tenant:
            owner[basket_id] = mapping.default_tenant
        elif options.unmapped == SKIP:
            problems.append(Problem("unmapped_basket", _unmapped(basket_id, baskets),
                                    "--unmapped skip"))
        elif options.unmapped:
            owner[basket_id] = options.unmapped
            problems.append(Problem("unmapped_basket", _unmapped(basket_id, baskets),
                                    f"--unmapped {options.unmapped}"))
        else:
            problems.append(Problem("unmapped_basket", _unmapped(basket_id, baskets)
                                    + "; map it, or pass --unmapped skip|TENANT"))
    return owner


def _unmapped(basket_id: str, baskets: dict[str, str]) -> str:
    return f"basket {basket_id} ({baskets[basket_id]!r}) is not in the mapping"


def _tenant_problems(tenant_ids: set[str], backend: Backend | None) -> list[Problem]:
    problems = []
    for tenant in sorted(tenant_ids):
        try:
            validate_tenant_id(tenant)
            if backend is not None:
                backend.location(tenant)
        except TenantIdError as exc:
            problems.append(Problem("invalid_tenant", f"{exc}; fix the mapping"))
    return problems


def _count(view: SourceView, plan: SplitPlan, owner: dict[str, str], baskets: dict[str, str],
           problems: list[Problem]) -> None:
    tenants = list(plan.tenants)
    plan.counts = {t: dict.fromkeys(TABLE_NAMES, 0) for t in tenants}
    for table in TABLE_NAMES:
        total = int(view.fetch(total_sql(table))[0][0])
        plan.source_counts[table] = total
        attributed = 0
        for first, second, rows in view.fetch(attribution_sql(table)):
            n = int(rows)
            attributed += n
            if first is None:  # global: every tenant
                for tenant in tenants:
                    plan.counts[tenant][table] += n
                continue
            found = owner.get(str(first))
            if found is None:
                plan.skipped[table] = plan.skipped.get(table, 0) + n
                continue
            tenant = found
            other = owner.get(str(second)) if second is not None else tenant
            if table in EDGE_TABLES and other != tenant:
                problems.append(_edge_problem(table, n, tenant, other, str(first), str(second),
                                              baskets, plan.drop_edges))
                if plan.drop_edges:
                    plan.skipped[table] = plan.skipped.get(table, 0) + n
                else:
                    plan.counts[tenant][table] += n
            else:
                plan.counts[tenant][table] += n
        if attributed != total:
            problems.append(Problem("orphan_rows", f"{total - attributed} row(s) of {table} "
                                    "reference a row that does not exist in the source, so "
                                    "they belong to no basket; repair the source first"))
    if set(GLOBAL_TABLES) and not tenants:
        plan.notes.append("no basket is assigned to any tenant: nothing would be copied")


def _edge_problem(table: str, rows: int, tenant: str, other: str | None, first: str,
                  second: str, baskets: dict[str, str], drop: bool) -> Problem:
    where = f"tenant {other!r}" if other else "no tenant (skipped)"
    if table == "operation_dependencies":
        text = (f"{rows} operation dependenc{'y' if rows == 1 else 'ies'} of tenant {tenant!r} "
                f"(basket {baskets.get(first, first)!r}) depend on operations in {where} "
                f"(basket {baskets.get(second, second)!r})")
    else:
        text = (f"{rows} doc_events row(s) of tenant {tenant!r} (basket "
                f"{baskets.get(first, first)!r}) name a document in {where} "
                f"(basket {baskets.get(second, second)!r})")
    kind = "cross_tenant_dependency" if table == "operation_dependencies" else "cross_tenant_event"
    if drop:
        return Problem(kind, text + "; they are dropped", "--cross-tenant-edges drop")
    return Problem(kind, text + "; pass --cross-tenant-edges drop to leave them out")


def expected_total(plan: SplitPlan, table: str) -> int:
    """Rows all tenants together must hold (global tables once per tenant)."""
    return sum(c[table] for c in plan.counts.values())


def plan_split(source: SplitSource, mapping: BasketMapping, options: PlanOptions,
               manager: TenantDatabaseManager) -> SplitPlan:
    """``split plan``: read-only; the revision shown is the recorded one (None: the run
    recognises it from the source's structure)."""
    backend = target_store(manager)
    with source.snapshot(scratch_dir(backend)) as (view, _token):
        plan = make_plan(view, mapping, options, backend, view.revision())
    plan.source = source.spec.describe()
    return plan
