"""The Citus topology on a real coordinator with two workers: configuration, nodes read
from Citus's metadata, schemas that are not distributed reported and distributed, and
the tenants / migrate commands through the coordinator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from citus_support import CitusTestCluster, citus_connect, citus_mapping
from click.testing import CliRunner
from test_fleet_cli import _envelope, _json, _run

from docex_ops.backends.postgres import PostgresBackend
from docex_ops.cli import main
from docex_ops.config.settings import ConfigError, Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.scripts import head_revision
from docex_ops.schema.ddl import head_ddl, version_table_ddl
from docex_ops.tenants.distribute import distribute_tenants
from docex_ops.topology.citus import CitusCluster


def _cluster(manager: TenantDatabaseManager) -> CitusCluster:
    return manager.topology.citus_cluster("a Citus topology")


def _undistributed(manager: TenantDatabaseManager, tenant_id: str) -> None:
    """A tenant schema made the plain way on the coordinator (sharding off): by a plain
    PostgreSQL backend, as the Citus topology's own would make it distributed."""
    ddl = head_ddl("postgresql") + version_table_ddl(head_revision())
    plain = PostgresBackend(manager.settings)
    assert plain.create(tenant_id, ddl) is True
    plain.dispose()


def _pg(**postgres: Any) -> dict[str, Any]:
    return {"database": {"type": "postgresql", "postgres": postgres}}


def test_config_topology_and_nodes() -> None:
    settings = settings_from_mapping(_pg(topology="citus", nodes={"w1": "10.0.0.5:5432"}))
    assert settings.citus is not None and settings.citus.nodes == (("w1", "10.0.0.5:5432"),)
    assert settings.citus.node_name("10.0.0.5", 5432) == "w1"
    assert settings.citus.node_name("10.0.0.6", 5432) == "10.0.0.6:5432"
    assert settings_from_mapping(_pg()).citus is None
    refused = {
        "topology": _pg(topology="citsu"),
        "host:port": _pg(topology="citus", nodes={"w1": "10.0.0.5"}),
        "only with": _pg(nodes={"w1": "10.0.0.5:5432"}),
        "cannot be combined": _pg(topology="citus", servers={"a": {}, "b": {"port": 5433}}),
        "invalid node name": _pg(topology="citus", nodes={"W 1": "h:1"}),
        "named twice": _pg(topology="citus", nodes={"a": "h:1", "b": "h:1"}),
    }
    for words, raw in refused.items():
        with pytest.raises(ConfigError, match=words):
            settings_from_mapping(raw)


def test_nodes_of_tenants_and_grouping_by_node(citus_manager: TenantDatabaseManager,
                                               citus_cluster: CitusTestCluster) -> None:
    cluster = _cluster(citus_manager)
    assert [n.name for n in cluster.worker_nodes()] == ["w1", "w2"]
    ids = ["n1", "n2", "n3", "n4"]
    for tenant_id in ids:
        citus_manager.provision(tenant_id)
    nodes = cluster.nodes_of(ids + ["absent"])
    assert nodes["absent"] is None
    assert {nodes[t] for t in ids} == {"w1", "w2"}
    # What Citus itself says, read from outside.
    conn = citus_connect(citus_cluster)
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT nodeport FROM citus_shards WHERE table_name::text = %s",
                    (cluster.location("n1") + ".docbasket",))
        port = cur.fetchone()[0]
    conn.close()
    assert citus_cluster.nodes[nodes["n1"]].endswith(f":{port}")
    assert cluster.node_of("n1") == nodes["n1"]
    grouped = cluster.by_node(ids)
    assert sorted(t for group in grouped.values() for t in group) == ids
    assert all(nodes[t] == node for node, group in grouped.items() for t in group)
    assert cluster.server_of("n1") == cluster.control_server  # connections: the coordinator


def test_undistributed_schema_is_reported_then_distributed(
        citus_manager: TenantDatabaseManager) -> None:
    citus_manager.provision("good")
    _undistributed(citus_manager, "plain1")
    found = citus_manager.discover()
    assert [t.tenant_id for t in found.tenants] == ["good"]
    assert found.tenants[0].node in ("w1", "w2")
    [problem] = found.problems
    assert problem.tenant_id == "plain1"
    assert "not a distributed schema" in problem.message
    assert "docex-ops tenants distribute plain1" in problem.message
    planned = distribute_tenants(citus_manager, every=True, dry_run=True)
    assert [(r.tenant_id, r.outcome) for r in planned] == [("plain1", "would distribute")]
    assert citus_manager.discover().problems == found.problems  # a dry run changes nothing
    [done] = distribute_tenants(citus_manager, ["plain1"])
    assert done.outcome == "distributed" and done.node in ("w1", "w2"), done
    after = citus_manager.discover()
    assert after.problems == [] and {t.tenant_id for t in after.tenants} == {"good", "plain1"}
    assert _cluster(citus_manager).node_of("plain1") == done.node
    [again] = distribute_tenants(citus_manager, ["plain1"])
    assert again.outcome == "already distributed"


def test_tenants_and_migrate_status_through_the_coordinator(
        citus_config_file: Path, citus_manager: TenantDatabaseManager) -> None:
    assert _run(citus_config_file, "tenants", "provision", "ca", "cb", "cc").exit_code == 0
    listed_run = _run(citus_config_file, "tenants", "list")
    listed = _json(listed_run)
    nodes = {t["tenant"]: t["node"] for t in listed["tenants"]}
    assert set(nodes) == {"ca", "cb", "cc"}
    # Citus spreads new distributed schemas over the workers: status reads both.
    assert set(nodes.values()) == {"w1", "w2"}
    assert _envelope(listed_run)["problems"] == []
    status = _json(_run(citus_config_file, "migrate", "status", "--check"))
    assert status["head"] == head_revision()
    assert status["by_revision"] == {head_revision(): 3}
    assert {t["tenant"]: t["state"] for t in status["tenants"]} == {
        "ca": "current", "cb": "current", "cc": "current"}
    shown = CliRunner().invoke(main, ["--config", str(citus_config_file), "tenants", "show",
                                      "cb"])
    assert shown.exit_code == 0, shown.output
    assert f"(node {nodes['cb']})" in shown.stdout
    assert _json(_run(citus_config_file, "tenants", "show", "cb"))["node"] == nodes["cb"]


def test_distribute_command(citus_config_file: Path,
                            citus_manager: TenantDatabaseManager) -> None:
    _undistributed(citus_manager, "loose")
    listed = _run(citus_config_file, "tenants", "list")
    assert listed.exit_code == 1 and "tenants distribute loose" in listed.output
    dry = _json(_run(citus_config_file, "tenants", "distribute", "--all", "--dry-run"))["tenants"]
    assert [(r["tenant"], r["outcome"]) for r in dry] == [("loose", "would distribute")]
    hostile = _run(citus_config_file, "tenants", "distribute", "x'; DROP SCHEMA public; --")
    assert hostile.exit_code == 2 and len(hostile.stderr.strip().splitlines()) == 1
    unknown = _run(citus_config_file, "tenants", "distribute", "nosuch")
    assert unknown.exit_code == 2 and "nosuch" in unknown.output
    done = _json(_run(citus_config_file, "tenants", "distribute", "loose"))["tenants"]
    assert done[0]["outcome"] == "distributed" and done[0]["node"] in ("w1", "w2")
    assert _run(citus_config_file, "tenants", "list").exit_code == 0


def test_distribute_refused_without_citus(settings_factory: Any, tmp_path: Path) -> None:
    from docs_support import write_config

    config = write_config(settings_factory("postgresql"), tmp_path / "plain.yaml")
    refused = _run(config, "tenants", "distribute", "--all")
    assert refused.exit_code == 2
    assert refused.stderr.strip().splitlines() == [
        "Error: tenants distribute needs database.postgres.topology: citus (a Citus "
        "coordinator); this configuration has no distributed schemas"]


def test_citus_config_file_round_trips(citus_cluster: CitusTestCluster, tmp_path: Path,
                                       schema_prefix: str) -> None:
    # The README's config lines: a coordinator and named workers.
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(citus_mapping(citus_cluster, schema_prefix)))
    settings: Settings = settings_from_mapping(yaml.safe_load(path.read_text()))
    assert settings.citus is not None
    assert dict(settings.citus.nodes) == citus_cluster.nodes


def test_without_citus_the_tests_skip_with_one_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import citus_support
    import pg_clusters

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pg_config").write_text(f"#!/bin/sh\necho {tmp_path}\n")
    (fake / "pg_config").chmod(0o755)
    monkeypatch.setattr(pg_clusters, "PG_BIN", fake)
    why = citus_support.citus_missing()
    assert why is not None and len(why.splitlines()) == 1
    assert f"citus.so is not in {tmp_path}" in why and "ensure-citus.sh" in why
    monkeypatch.undo()
    assert citus_support.citus_missing() is None  # installed here


def test_many_revisions_are_read_on_one_coordinator_connection(
        citus_manager: TenantDatabaseManager, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers read the version tables in parallel already: a second coordinator
    connection would only wait on them (about 50 ms of `migrate status` at 1,000)."""
    from docex_ops.backends import pg_discover

    for tenant_id in ("ra", "rb", "rc", "rd"):
        citus_manager.provision(tenant_id)
    monkeypatch.setattr(pg_discover, "SPLIT_REVISIONS_FROM", 2)
    coordinator = citus_manager.topology.citus_cluster("test").coordinator
    reader, connections = coordinator.revision_reader, []

    def counting(conn: Any, schemas: list[str], timeout: float) -> Any:
        connections.append(id(conn))
        return reader(conn, schemas, timeout)

    monkeypatch.setattr(coordinator, "revision_reader", counting)
    found = citus_manager.discover()
    assert {t.tenant_id: t.revision for t in found.tenants} == dict.fromkeys(
        ("ra", "rb", "rc", "rd"), head_revision())
    assert len(connections) == 1
