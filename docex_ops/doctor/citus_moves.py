"""On a Citus cluster: whether each worker can be the source of an online move. Citus's
online move can lose the last acknowledged writes of a worker that commits with
synchronous_commit off, so docex-ops refuses it there (move/citus.py); this says so
before anyone tries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext


def check_citus_moves(ctx: DoctorContext) -> list[DoctorRow]:
    if ctx.manager.topology.shape != "citus" or not ctx.reachable_postgres:
        return []
    from docex_ops.move.citus import asynchronous_nodes, citus_of

    cluster = citus_of(ctx.manager)
    workers = cluster.worker_nodes()
    refused = {node.name for node in asynchronous_nodes(cluster, workers)}
    return [DoctorRow("citus moves", f"{node.name} {node.host}:{node.port}",
                      WARN if node.name in refused else PASS,
                      "synchronous_commit is off for the server, the database or a role: "
                      "online moves and rebalances from it are refused (set "
                      "synchronous_commit = on, or move with --offline)"
                      if node.name in refused else
                      "commits synchronously: online moves from it are allowed")
            for node in workers]
