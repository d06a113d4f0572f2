"""Moving a big tenant on Citus (``citus_schema_move`` through ``tenants move``) against
docex-ops' own online move between two plain servers, side by side in one run.

Per round: a tenant with ROWS rows (1,000 baskets, the rest documents; the load of
benchmarks/move.py) is moved while the writer of benchmarks/move.py writes a basket
every ~2 ms through the manager:

- Citus: a coordinator and two workers (tests/citus_support.py), the tenant placed on
  w1 and moved to w2 with ``tenants move`` (online: logical replication, then the
  row-by-row proof of the copy); writes go through the coordinator;
- plain: two plain servers (tests/pg_clusters.py), the same tenant moved online from b
  to c with docex-ops' own move (logical replication, checkpoint, short freeze).

Printed for each: the total time, the writer's longest pause between two acknowledged
writes, acknowledged writes lost (must be 0), and Citus/plain ratios.

    .venv/bin/python benchmarks/citus_move.py [--rounds 2] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import move as plain  # noqa: E402  (benchmarks/move.py: the plain move's load and writer)
import pg_clusters as pgc  # noqa: E402
from citus_support import CitusTestCluster, citus_mapping, citus_missing, start_citus  # noqa: E402

from docex_ops.backends.contents import allow_rows  # noqa: E402
from docex_ops.config.settings import settings_from_mapping  # noqa: E402
from docex_ops.manager.tenant_manager import TenantDatabaseManager  # noqa: E402
from docex_ops.move.movers import move_tenant  # noqa: E402
from docex_ops.move.run import MoveOptions, finish_move  # noqa: E402


def _load(cluster: pgc.Cluster, schema: str, rows: int) -> None:
    """benchmarks/move.py's load, statement by statement (Citus routes each)."""
    sql = plain._LOAD_SQL.format(s=f'"{schema}"', documents=rows - 1000)
    with closing(plain.connect(cluster)) as conn, conn.cursor() as cur:
        for statement in (s.strip() for s in sql.split(";")):
            if statement:
                cur.execute(statement)


def _moved(manager: TenantDatabaseManager, tenant: str, target: str, cluster: pgc.Cluster,
           schema: str) -> dict[str, float]:
    """Move with the writer running; the figures of that move."""
    writer = plain.Writer(manager, tenant)
    writer.start()
    time.sleep(0.5)
    started = time.perf_counter()
    result = move_tenant(manager, tenant, target, MoveOptions())
    total = time.perf_counter() - started
    time.sleep(0.5)
    writer.stop.set()
    writer.join(30)
    landed = plain.on_server(cluster, schema, writer.acked)
    return {"total": total, "pause": writer.longest_pause,
            "lost": len(writer.acked) - landed, "writes": len(writer.acked),
            "rows": result.rows}


def citus_round(citus: CitusTestCluster, rows: int, index: int) -> dict[str, float]:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_from_mapping(citus_mapping(citus, f"c{index}_"),
                                                          "<bench citus>"))
    cluster = manager.topology.citus_cluster("the benchmark needs Citus")
    tenant = "big"
    manager.provision(tenant)
    schema = cluster.location(tenant)
    _load(citus.coordinator, schema, rows)
    if cluster.node_of(tenant) != "w1":
        move_tenant(manager, tenant, "w1", MoveOptions(offline=True))
    figures = _moved(manager, tenant, "w2", citus.coordinator, schema)
    manager.topology.drop(tenant, allow_rows)
    TenantDatabaseManager.reset()
    return figures


def plain_round(servers: dict[str, pgc.Cluster], rows: int, index: int) -> dict[str, float]:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_from_mapping(plain.fleet_mapping(servers, "b"),
                                                          "<bench plain>"))
    fleet = manager.topology.several_servers("the benchmark needs several servers")
    tenant = f"big{index}"
    fleet.reserve(tenant, "b")
    manager.provision(tenant)
    schema = fleet.location(tenant)
    _load(servers["b"], schema, rows)
    figures = _moved(manager, tenant, "c", servers["c"], schema)
    finish_move(manager, tenant)
    manager.topology.drop(tenant, allow_rows)
    TenantDatabaseManager.reset()
    return figures


def report(rounds: list[tuple[dict[str, float], dict[str, float]]]) -> None:
    def show(side: int, key: str) -> str:
        values = sorted(r[side][key] for r in rounds)
        return f"{values[0]:.2f}-{values[-1]:.2f}s (median {statistics.median(values):.2f}s)"

    print(f"\nmove of a {int(rounds[0][0]['rows']):,}-row tenant with a writer every 2 ms, "
          f"{len(rounds)} round(s):")
    for side, name in ((0, "Citus citus_schema_move (tenants move)"),
                       (1, "plain servers, docex-ops online move")):
        lost = max(int(r[side]["lost"]) for r in rounds)
        writes = min(int(r[side]["writes"]) for r in rounds)
        print(f"  {name}: total {show(side, 'total')}; longest write pause "
              f"{show(side, 'pause')}; acknowledged writes lost {lost} of {writes}+")
    totals = sorted(c["total"] / p["total"] for c, p in rounds)
    pauses = sorted(c["pause"] / p["pause"] for c, p in rounds)
    print(f"  Citus/plain: total {totals[0]:.2f}-{totals[-1]:.2f}x, longest pause "
          f"{pauses[0]:.2f}-{pauses[-1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    missing = citus_missing()
    if missing:
        raise SystemExit(missing)
    pgc.require_binaries()
    root = pgc.make_root()
    started: list[pgc.Cluster] = []
    try:
        citus = start_citus(root, started)
        servers = plain.start_clusters(["b", "c"], root)
        started.extend(servers.values())
        print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout}",
              end="", flush=True)
        rounds = []
        for index in range(args.rounds):
            on_citus = citus_round(citus, args.rows, index)
            on_plain = plain_round(servers, args.rows, index)
            print(f"round {index + 1}: citus " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                        on_citus.items())
                  + "; plain " + ", ".join(f"{k} {v:.2f}" for k, v in on_plain.items()),
                  flush=True)
            rounds.append((on_citus, on_plain))
        report(rounds)
    finally:
        TenantDatabaseManager.reset()
        for cluster in started:
            pgc.stop_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
