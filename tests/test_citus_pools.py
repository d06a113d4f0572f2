"""``pools report`` on a Citus cluster: the coordinator's connections to each worker and
citus.max_shared_pool_size, beside the tenant pools."""

from __future__ import annotations

import json
from pathlib import Path

from citus_support import CitusTestCluster
from click.testing import CliRunner
from sqlalchemy import select

from docex_ops.cli import main
from docex_ops.cli.pools_render import render_report
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.pools import build_report
from docex_ops.schema.head import docbasket
from docex_ops.topology.citus import CitusCluster


def test_pools_report_shows_the_coordinators_connections_per_worker(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path) -> None:
    cluster: CitusCluster = citus_manager.topology.citus_cluster("a Citus topology")
    ids = ["pl1", "pl2", "pl3", "pl4"]
    for tenant_id in ids:
        citus_manager.provision(tenant_id)
    nodes = cluster.nodes_of(ids)
    assert set(nodes.values()) == {"w1", "w2"}
    for tenant_id in ids:  # a query per tenant: the coordinator opens (and caches) a
        with citus_manager.tenant_transaction(tenant_id) as session:  # worker connection
            session.execute(select(docbasket.c.id)).all()
    # The operation with this process' pools (the CLI below starts a process of its own).
    report = json.loads(render_report(build_report(citus_manager), "json"))
    citus = report["citus"]
    # Citus's default (0) shows as the coordinator's max_connections.
    assert citus["max_shared_pool_size"] == report["server"]["max_connections"] == 60
    assert citus["pool_limit"] == 60
    workers = {w["node"]: w for w in citus["workers"]}
    assert list(workers) == ["w1", "w2"]
    for node in ("w1", "w2"):
        assert workers[node]["tenants"] >= sum(1 for n in nodes.values() if n == node)
        assert workers[node]["pool_connections"] >= 1, workers  # the cached connections
    pools = {t["tenant"]: t for t in report["tenants"]}  # the tenant pools beside
    assert all(pools[t]["process_open"] >= 1 and pools[t]["total"] >= 1 for t in ids), pools
    table = CliRunner().invoke(main, ["--config", str(citus_config_file), "pools", "report"])
    assert table.exit_code == 0, table.output
    assert "citus workers: citus.max_shared_pool_size 60 (60 per worker)" in table.stdout
    assert "tenant connections:" in table.stdout
    lines = table.stdout.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("citus workers:")))
    assert any(line.split()[:1] == ["w1"] for line in lines[head:])
    assert any(line.split()[:1] == ["w2"] for line in lines[head:])
