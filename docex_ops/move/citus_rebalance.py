"""``tenants rebalance`` on a Citus cluster: Citus's own plan and background rebalance.

Planning asks ``get_rebalance_table_shards_plan`` (strategy ``by_shard_count``, or
``by_disk_size`` with ``--by-size``). It lists shard moves; a tenant schema's tables are
one colocation group and move together, so the rows are grouped by schema into one
move per tenant. The plan covers the whole cluster: a distributed schema that is not a
tenant of this configuration is listed by its schema name.

Executing runs ``citus_rebalance_start`` (a background job, ``block_writes`` with
``--offline``, else ``auto``) and follows the job until it ends; a failed or cancelled
job raises with Citus's messages. Then every tenant the plan named is checked: on the
node the plan gave, and no table with fewer rows than before the job (more rows are
writes meanwhile). No printing here.
"""

from __future__ import annotations

import time
from typing import Any

from docex_ops import audit_trail
from docex_ops.backends.digest import TableDigest
from docex_ops.executor import ProgressFn, ProgressTick
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move import pg_online as pgm
from docex_ops.move.citus import (
    OFFLINE,
    ONLINE,
    citus_of,
    journal_of,
    refuse_asynchronous_commit,
)
from docex_ops.move.journal import SWITCHED
from docex_ops.move.rebalance import Layout, PlannedMove, RebalancePlan, loads, refuse_unsettled
from docex_ops.move.run import MoveOptions, MoveResult
from docex_ops.topology.citus import CitusCluster

BY_COUNT, BY_SIZE = "by_shard_count", "by_disk_size"
POLL_SECONDS = 0.5
_ENDED = ("finished", "failed", "cancelled")

_PLAN_SQL = """
SELECT n.nspname::text, sum(p.shard_size)::bigint, p.sourcename, p.sourceport,
       p.targetname, p.targetport
FROM get_rebalance_table_shards_plan(rebalance_strategy => %(st)s) p
JOIN pg_class c ON c.oid = p.table_name
JOIN pg_namespace n ON n.oid = c.relnamespace
GROUP BY 1, 3, 4, 5, 6
ORDER BY min(p.shardid)
"""
_START_SQL = ("SELECT citus_rebalance_start(rebalance_strategy => %(st)s, "
              "shard_transfer_mode => %(m)s::citus.shard_transfer_mode)")
_STATUS_SQL = "SELECT state::text, details FROM citus_job_status(%(j)s)"
_MESSAGES_SQL = """
SELECT string_agg(DISTINCT btrim(message), '; ') FROM pg_dist_background_task
WHERE job_id = %(j)s AND status::text IN ('error', 'cancelled') AND btrim(message) <> ''
"""


def plan_rebalance(manager: TenantDatabaseManager, size_tolerance: float = 0.05,
                   by_size: bool = False) -> RebalancePlan:
    """Citus's plan, one move per schema; ``size_tolerance`` is for several servers
    (Citus's strategies carry their own thresholds)."""
    del size_tolerance
    cluster = citus_of(manager)
    strategy = BY_SIZE if by_size else BY_COUNT
    found = cluster.discover(with_size=True)
    tenant_of = {t.location: t.tenant_id for t in found.tenants}
    layout: Layout = {n.name: {} for n in cluster.worker_nodes()}
    for info in found.tenants:
        if info.node is not None:
            layout.setdefault(info.node, {})[info.tenant_id] = info.size_bytes or 0
    with cluster.coordinator.admin_engine.connect() as conn:
        rows = conn.exec_driver_sql(_PLAN_SQL, {"st": strategy}).all()
        conn.rollback()
    moves = [PlannedMove(tenant_of.get(schema, schema),
                         cluster.citus.node_name(src_host, int(src_port)),
                         cluster.citus.node_name(dst_host, int(dst_port)), int(size or 0))
             for schema, size, src_host, src_port, dst_host, dst_port in rows]
    after: Layout = {node: dict(tenants) for node, tenants in layout.items()}
    for move in moves:
        if move.tenant_id in after.get(move.source, {}):
            after.setdefault(move.target, {})[move.tenant_id] = \
                after[move.source].pop(move.tenant_id)
    unfinished = [m.tenant_id for m in journal_of(cluster).all() if m.step != SWITCHED]
    return RebalancePlan(loads(layout), loads(after), moves, found.problems, unfinished,
                         strategy)


def execute_plan(manager: TenantDatabaseManager, plan: RebalancePlan, options: MoveOptions,
                 on_move: ProgressFn | None = None) -> list[MoveResult]:
    """Run Citus's rebalance job, follow it, then check every tenant the plan moved."""
    refuse_unsettled(plan)
    cluster = citus_of(manager)
    if plan.moves and not options.offline:
        sources = {m.source for m in plan.moves}
        refuse_asynchronous_commit(cluster, [n for n in cluster.worker_nodes()
                                             if n.name in sources], "rebalance")
    started = time.perf_counter()
    tenants = set(cluster.tenant_ids())
    ours = [m.tenant_id for m in plan.moves if m.tenant_id in tenants]
    before = {t: _digest(cluster, t) for t in ours}
    strategy = plan.strategy or BY_COUNT
    mode = OFFLINE if options.offline else ONLINE
    with cluster.coordinator.admin_engine.connect() as conn:
        job = conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            _START_SQL, {"st": strategy, "m": mode}).scalar()
    if job is not None:
        _follow(cluster, int(job), on_move, deadline=time.monotonic()
                + options.sync_timeout * max(1, len(plan.moves)))
    nodes = cluster.nodes_of(ours)
    results, short = [], []
    for move in plan.moves:
        if move.tenant_id not in before:
            results.append(MoveResult(move.tenant_id, move.source, move.target, None,
                                      "not a tenant here: not checked", 0, None, 0.0))
            continue
        after = _digest(cluster, move.tenant_id)
        fewer = [t for t, d in before[move.tenant_id].items()
                 if after.get(t, TableDigest(0, "")).rows < d.rows]
        if fewer:
            short.append(f"{move.tenant_id} ({', '.join(fewer)})")
        node = nodes.get(move.tenant_id)
        outcome = "moved" if node == move.target else f"on {node or 'no node'}"
        results.append(MoveResult(move.tenant_id, move.source, node or move.target, None,
                                  outcome, sum(d.rows for d in after.values()), None,
                                  time.perf_counter() - started))
    audit_trail.record("tenant.rebalance", None, cluster.coordinator.settings.describe(),
                       audit_trail.FAILED if short else audit_trail.OK,
                       {"job": job, "strategy": strategy, "mode": mode, "topology": "citus",
                        "moves": len(plan.moves), "rows_missing": short})
    if short:
        raise RuntimeError(f"Citus rebalance job {job} finished, but tenant(s) have fewer "
                           f"rows than before it: {', '.join(short)}")
    return results


def _digest(cluster: CitusCluster, tenant_id: str) -> dict[str, TableDigest]:
    with pgm.reading(cluster.coordinator) as conn:
        return pgm.digest_in(conn, cluster.location(tenant_id))


def _follow(cluster: CitusCluster, job: int, on_move: ProgressFn | None,
            deadline: float) -> None:
    """Poll the job until it ends; report (tasks done, tasks) whenever that changes."""
    seen: tuple[int, int] | None = None
    while True:
        with cluster.coordinator.admin_engine.connect() as conn:
            state, details = conn.exec_driver_sql(_STATUS_SQL, {"j": job}).one()
            message = (conn.exec_driver_sql(_MESSAGES_SQL, {"j": job}).scalar()
                       if state in ("failed", "cancelled") else None)
            conn.rollback()
        counts: dict[str, Any] = (details or {}).get("task_state_counts", {})
        now = int(counts.get("done", 0)), sum(int(n) for n in counts.values())
        if on_move is not None and now != seen and now[1]:
            on_move(ProgressTick(*now))
        seen = now
        if state == "finished":
            return
        if state in _ENDED:
            raise RuntimeError(f"Citus rebalance job {job} {state}: "
                               f"{message or 'no message from Citus'}; see "
                               "SELECT * FROM citus_rebalance_status()")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Citus rebalance job {job} is still {state} after the time "
                               "allowed; it goes on in the background: follow it with "
                               "SELECT * FROM citus_rebalance_status()")
        time.sleep(POLL_SECONDS)
