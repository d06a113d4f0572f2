"""Provisioning on a real Citus cluster: each tenant is a distributed schema, created in
one transaction, with DocEX's exact catalog, its tables colocated on one worker."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
from citus_support import CitusTestCluster, citus_connect
from docex_expected import expected_catalog
from test_schema_catalog import _assert_same

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.names import TABLE_NAMES


def _shards(citus: CitusTestCluster, schema: str) -> list[tuple[str, str, int]]:
    conn = citus_connect(citus)
    with conn.cursor() as cur:
        cur.execute("SELECT table_name::text, nodename, nodeport FROM citus_shards "
                    "WHERE table_name::text LIKE %s || '.%%'", (schema,))
        rows = cur.fetchall()
    conn.close()
    return rows


def test_provisioned_tenant_is_a_distributed_schema_with_docex_catalog(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster) -> None:
    assert citus_manager.provision("cat1") is True
    schema = citus_manager.topology.location("cat1")
    _assert_same(citus_manager.backend.catalog("cat1"),
                 expected_catalog(citus_manager.backend.kind, widened=True))
    conn = citus_connect(citus_cluster)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM citus_schemas WHERE schema_name::text = %s",
                    (schema,))
        assert cur.fetchone() == (1,)
    conn.close()
    shards = _shards(citus_cluster, schema)
    # Every DocEX table and the version table are shards of that schema, all on one worker.
    assert {name.split(".", 1)[1] for name, _, _ in shards} == set(TABLE_NAMES) | {
        "alembic_version"}
    nodes = {port for _, _, port in shards}
    assert len(nodes) == 1
    assert nodes <= {w.port for w in citus_cluster.workers.values()}
    assert citus_manager.topology.citus_cluster("x").node_of("cat1") in citus_cluster.nodes
    assert citus_manager.provision("cat1") is False  # idempotent


def test_a_failed_provision_leaves_nothing_behind(citus_manager: TenantDatabaseManager,
                                                  citus_cluster: CitusTestCluster) -> None:
    # One transaction: a DDL error after CREATE SCHEMA leaves neither schema nor shards.
    topology = citus_manager.topology
    with pytest.raises(psycopg2.errors.UndefinedTable):
        topology.create("broken", "CREATE TABLE docbasket (id text PRIMARY KEY);\n"
                                  "CREATE TABLE nope (id text REFERENCES missing (id));")
    schema = topology.location("broken")
    conn = citus_connect(citus_cluster)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        assert cur.fetchone() == (0,)
    conn.close()
    assert _shards(citus_cluster, schema) == []


def test_verify_size_and_drop_through_the_coordinator(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path) -> None:
    from test_fleet_cli import _json, _run

    provisioned = _json(_run(citus_config_file, "tenants", "provision", "sz", "--verify"))
    # a probe basket written and read on the worker
    assert provisioned["tenants"][0]["verified"] is True
    schema = citus_manager.topology.location("sz")
    conn = citus_connect(citus_cluster)
    with conn.cursor() as cur:
        cur.execute(f'INSERT INTO "{schema}".docbasket (id, name, storage_config, status, '
                    "created_at, updated_at) SELECT 'b' || i, 'n' || i, '{}', 'active', now(), "
                    "now() FROM generate_series(1, 2000) i")
        cur.execute("SELECT sum(shard_size) FROM citus_shards WHERE table_name::text LIKE "
                    "%s || '.%%'", (schema,))
        on_workers = int(cur.fetchone()[0])
    [listed] = [t for t in _json(_run(citus_config_file, "tenants", "list"))["tenants"]
                if t["tenant"] == "sz"]
    # The worker's bytes, not the coordinator's empty shell tables.
    assert listed["size_bytes"] == on_workers > 100_000
    with conn.cursor() as cur:
        cur.execute(f'DELETE FROM "{schema}".docbasket')
    dropped = _run(citus_config_file, "tenants", "drop", "sz", "--yes")
    assert dropped.exit_code == 0, dropped.output
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        assert cur.fetchone() == (0,)
    conn.close()
    assert _shards(citus_cluster, schema) == []
