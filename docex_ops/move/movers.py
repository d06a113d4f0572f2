"""Which ``tenants move`` / ``rebalance`` implementation serves the configured topology.

Several independent servers move tenants themselves (run.py, rebalance.py); a Citus
cluster has Citus move them (citus.py, citus_rebalance.py). One registry per step, keyed
by the topology's ``shape``, so the CLI calls one operation and never asks which
topology it runs on; one server gets run.py's clear refusal (it has nowhere to move to).
"""

from __future__ import annotations

from collections.abc import Callable

from docex_ops.backends.registry import KindRegistry
from docex_ops.executor import ProgressFn
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move.rebalance import RebalancePlan
from docex_ops.move.run import MoveOptions, MoveResult
from docex_ops.tenancy import validate_tenant_id

_PLAIN_MOVE = "docex_ops.move.run:move_tenant"
MOVERS = KindRegistry[Callable[..., MoveResult]]("tenants move", {
    "single": _PLAIN_MOVE, "several": _PLAIN_MOVE,
    "citus": "docex_ops.move.citus:move_tenant"})
PLANNERS = KindRegistry[Callable[..., RebalancePlan]]("tenants rebalance", {
    "single": "docex_ops.move.rebalance:plan_rebalance",
    "several": "docex_ops.move.rebalance:plan_rebalance",
    "citus": "docex_ops.move.citus_rebalance:plan_rebalance"})
EXECUTORS = KindRegistry[Callable[..., list[MoveResult]]]("tenants rebalance --execute", {
    "single": "docex_ops.move.rebalance:execute_plan",
    "several": "docex_ops.move.rebalance:execute_plan",
    "citus": "docex_ops.move.citus_rebalance:execute_plan"})


def move_tenant(manager: TenantDatabaseManager, tenant_id: str, target: str,
                options: MoveOptions | None = None) -> MoveResult:
    """Move one tenant to ``target`` (a server, or a Citus worker node)."""
    tenant_id = validate_tenant_id(tenant_id)  # before any connection, whatever the topology
    return MOVERS.for_kind(manager.topology.shape)(manager, tenant_id, target, options)


def plan_rebalance(manager: TenantDatabaseManager, size_tolerance: float = 0.05,
                   by_size: bool = False) -> RebalancePlan:
    """The moves that even out the tenants (several servers: counts, then sizes within
    ``size_tolerance``; Citus: its own plan, by shard count or ``by_size``)."""
    return PLANNERS.for_kind(manager.topology.shape)(manager, size_tolerance, by_size)


def execute_plan(manager: TenantDatabaseManager, plan: RebalancePlan, options: MoveOptions,
                 on_move: ProgressFn | None = None) -> list[MoveResult]:
    """Carry out ``plan``; a result per planned move, in plan order."""
    return EXECUTORS.for_kind(manager.topology.shape)(manager, plan, options, on_move)
