"""``tenants rebalance``: plan moves that even out tenant counts and sizes across servers.

Planning is pure (``plan_moves``) so it can be read and tested apart from any
server. First the counts are evened out (to within one tenant), each move
taking the tenant that best narrows the size gap between the two servers;
then the sizes, by moving or swapping tenants between the largest and the
smallest server while that narrows the gap and keeps the counts even.
Nothing moves unless the caller executes the plan, move by move, with
``moves.move_tenant``. No printing here.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from docex_ops.executor import ProgressFn, ProgressTick
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move.journal import SWITCHED
from docex_ops.move.run import MoveOptions, MoveResult, move_tenant
from docex_ops.topology.fleet_view import PlacementProblem

Layout = dict[str, dict[str, int]]   # server -> {tenant id: size in bytes}
MAX_ROUNDS = 10_000                  # a bound on planning, never reached in practice


@dataclass(frozen=True)
class PlannedMove:
    tenant_id: str
    source: str
    target: str
    size_bytes: int


@dataclass(frozen=True)
class ServerLoad:
    server: str
    tenants: int
    size_bytes: int


@dataclass
class RebalancePlan:
    before: list[ServerLoad]
    after: list[ServerLoad]
    moves: list[PlannedMove]
    problems: list[PlacementProblem] = field(default_factory=list)
    unfinished_moves: list[str] = field(default_factory=list)
    strategy: str | None = None   # Citus: the rebalance strategy the plan was made with


def loads(layout: Mapping[str, Mapping[str, int]]) -> list[ServerLoad]:
    return [ServerLoad(s, len(t), sum(t.values())) for s, t in layout.items()]


def plan_moves(layout: Mapping[str, Mapping[str, int]], size_tolerance: float = 0.05,
               pinned: Collection[str] = ()) -> list[PlannedMove]:
    """Moves that even out ``layout`` (not changed); servers listed with no tenants count.

    ``size_tolerance``: a share of the mean server size; sizes are evened out only while
    the largest and smallest server differ by more, and a move must narrow that gap by
    at least as much. ``pinned`` tenants count but are never moved.
    """
    state: Layout = {s: dict(t) for s, t in layout.items()}
    planned: list[PlannedMove] = []
    if len(state) < 2:
        return planned
    mean = sum(sum(t.values()) for t in state.values()) / len(state)
    for _ in range(MAX_ROUNDS):
        step = (_count_step(state, set(pinned))
                or _size_step(state, size_tolerance * mean, set(pinned)))
        if not step:
            break
        for move in step:
            del state[move.source][move.tenant_id]
            state[move.target][move.tenant_id] = move.size_bytes
            planned.append(move)
    return _without_round_trips(planned)


def _bytes(state: Layout, server: str) -> int:
    return sum(state[server].values())


def _movable(state: Layout, server: str, pinned: set[str]) -> dict[str, int]:
    return {t: size for t, size in state[server].items() if t not in pinned}


def _count_step(state: Layout, pinned: set[str]) -> list[PlannedMove]:
    # Most tenants (ties: most bytes) to fewest tenants (ties: fewest bytes).
    src = max(state, key=lambda s: (len(state[s]), _bytes(state, s)))
    dst = min(state, key=lambda s: (len(state[s]), _bytes(state, s)))
    candidates = _movable(state, src, pinned)
    if len(state[src]) - len(state[dst]) <= 1 or not candidates:
        return []
    half_gap = (_bytes(state, src) - _bytes(state, dst)) / 2
    tenant = min(candidates, key=lambda t: (abs(candidates[t] - half_gap), t))
    return [PlannedMove(tenant, src, dst, candidates[tenant])]


def _size_step(state: Layout, min_gain: float, pinned: set[str]) -> list[PlannedMove]:
    src = max(state, key=lambda s: _bytes(state, s))
    dst = min(state, key=lambda s: _bytes(state, s))
    gap = _bytes(state, src) - _bytes(state, dst)
    if gap <= 0 or gap <= min_gain:
        return []
    best: tuple[float, list[PlannedMove]] = (gap - max(min_gain, 1), [])
    givers = _movable(state, src, pinned)
    if len(state[src]) > len(state[dst]):  # a plain move keeps the counts even
        for t, size in sorted(givers.items()):
            if abs(gap - 2 * size) < best[0]:
                best = (abs(gap - 2 * size), [PlannedMove(t, src, dst, size)])
    takers = sorted((size, t) for t, size in _movable(state, dst, pinned).items())
    for a, size_a in sorted(givers.items()):  # a swap keeps the counts as they are
        # The best partner is the one closest to size_a - gap/2 (and smaller than size_a).
        at = bisect.bisect_left(takers, (size_a - gap / 2, ""))
        for size_b, b in takers[max(0, at - 1):at + 1]:
            if size_b < size_a and abs(gap - 2 * (size_a - size_b)) < best[0]:
                best = (abs(gap - 2 * (size_a - size_b)),
                        [PlannedMove(a, src, dst, size_a), PlannedMove(b, dst, src, size_b)])
    return best[1]


def _without_round_trips(planned: list[PlannedMove]) -> list[PlannedMove]:
    """One move per tenant, from where it is to where it ends (a tenant moved twice while
    planning is moved once; one that ends where it started is not moved)."""
    first: dict[str, PlannedMove] = {}
    last: dict[str, PlannedMove] = {}
    for move in planned:
        first.setdefault(move.tenant_id, move)
        last[move.tenant_id] = move
    return [PlannedMove(t, m.source, last[t].target, m.size_bytes)
            for t, m in first.items() if m.source != last[t].target]


def plan_rebalance(manager: TenantDatabaseManager, size_tolerance: float = 0.05,
                   by_size: bool = False) -> RebalancePlan:
    """The fleet's layout now (sizes from the catalogs) and the moves that even it out.

    ``by_size`` is Citus's choice of strategy; here sizes are always evened out after
    the counts, so asking for it is refused rather than ignored."""
    if by_size:
        raise LookupError("--by-size chooses a Citus rebalance strategy; with several "
                          "servers sizes are always evened out after counts "
                          "(see --size-tolerance)")
    fleet = manager.topology.several_servers(
        "tenants rebalance needs database.postgres.servers with two or more servers")
    view = fleet.reconcile(with_size=True)
    layout: Layout = {name: {} for name in fleet.servers}
    for info in view.tenants:
        if info.server is not None:
            layout[info.server][info.tenant_id] = info.size_bytes or 0
    journal = fleet.moves.all()
    moves = plan_moves(layout, size_tolerance, pinned={m.tenant_id for m in journal})
    after: Layout = {s: dict(t) for s, t in layout.items()}
    for move in moves:
        after[move.target][move.tenant_id] = after[move.source].pop(move.tenant_id)
    unfinished = [m.tenant_id for m in journal if m.step != SWITCHED]
    return RebalancePlan(loads(layout), loads(after), moves, view.problems, unfinished)


def execute_plan(manager: TenantDatabaseManager, plan: RebalancePlan, options: MoveOptions,
                 on_move: ProgressFn | None = None) -> list[MoveResult]:
    """Run the planned moves one after another; stops at the first that fails (raises)."""
    refuse_unsettled(plan)
    results = []
    if on_move is not None:
        on_move(ProgressTick(0, len(plan.moves)))
    for done, move in enumerate(plan.moves):
        results.append(move_tenant(manager, move.tenant_id, move.target, options))
        if on_move is not None:
            on_move(ProgressTick(done + 1, len(plan.moves), move.tenant_id))
    return results


def refuse_unsettled(plan: RebalancePlan) -> None:
    """RuntimeError while placement problems or unfinished moves would make moves unsafe."""
    if plan.problems or plan.unfinished_moves:
        raise RuntimeError(
            "refusing to rebalance while the fleet has placement problems ("
            + ", ".join(p.tenant_id for p in plan.problems) + ") or unfinished moves ("
            + ", ".join(plan.unfinished_moves) + "): run `docex-ops tenants list` and "
            "rerun or finish those moves first")
