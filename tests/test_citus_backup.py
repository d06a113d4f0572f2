"""Backups and verified restores through a Citus coordinator.

pg_dump of a tenant schema on the coordinator dumps the rows that live on the worker
(Citus answers the dump's COPY ... TO from the shards); a restored tenant is a
distributed schema again, its rows and checksums those of the manifest."""

from __future__ import annotations

import time
from pathlib import Path

from backup_data import fill_tenant, tenant_digest
from citus_support import CitusTestCluster, citus_connect, connect
from test_backup import _backup, _manifest_digest, _run

from docex_ops.backup import find_manifests, read_manifest
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.names import TABLE_NAMES


def _on_worker(manager: TenantDatabaseManager, citus: CitusTestCluster, tenant: str) -> str:
    """The tenant's worker node: its schema is distributed and every table on that node;
    the coordinator holds none of its rows."""
    topology = manager.topology.citus_cluster("test")
    placed = topology.placements([tenant])[tenant]
    assert placed is not None and placed.distributed, f"{tenant} is not distributed"
    assert placed.node in citus.nodes, placed
    schema = topology.location(tenant)
    conn = citus_connect(citus)
    with conn.cursor() as cur:
        cur.execute("SELECT count(DISTINCT table_name), count(DISTINCT nodeport) FROM "
                    "citus_shards WHERE table_name::text LIKE %s || '.%%'", (schema,))
        tables, nodes = cur.fetchone()
        # Rows read from the coordinator's own (shell) tables, not routed to the worker.
        cur.execute("SET citus.enable_router_execution TO off")
        cur.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                    "c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' "
                    "AND NOT c.oid IN (SELECT logicalrelid FROM pg_dist_partition)",
                    (schema,))
        local_tables = cur.fetchone()[0]
    conn.close()
    assert tables == len(TABLE_NAMES) + 1 and nodes == 1, (tables, nodes)
    assert local_tables == 0  # no table of the tenant is a plain table on the coordinator
    return placed.node


def test_backup_holds_the_workers_rows_and_restore_as_is_distributed(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, tmp_path: Path) -> None:
    citus_manager.provision("src")
    inserted = fill_tenant(citus_manager, "src", big=True)
    before = tenant_digest(citus_manager, "src")
    manifest_path = _backup(citus_manager, "src", tmp_path / "bk")
    manifest = read_manifest(manifest_path)
    # The archive holds the worker's rows: the manifest's counts are the inserted rows.
    assert manifest.rows == inserted and all(d.rows > 0 for d in manifest.tables.values())
    assert _manifest_digest(manifest_path) == before
    code, out = _run(citus_config_file, "backup", "restore", str(manifest.archive_path),
                     "--as", "copy")
    assert code == 0, out
    _on_worker(citus_manager, citus_cluster, "copy")
    assert tenant_digest(citus_manager, "copy") == before
    assert citus_manager.topology.read_revisions(["copy"]) == {"copy": "0003_object_paths"}
    listed = {t.tenant_id for t in citus_manager.topology.discover().tenants}
    assert {"src", "copy"} <= listed
    assert citus_manager.topology.problems() == []  # nothing left undistributed


def test_restore_force_over_an_existing_tenant(citus_manager: TenantDatabaseManager,
                                               citus_cluster: CitusTestCluster,
                                               citus_config_file: Path,
                                               tmp_path: Path) -> None:
    citus_manager.provision("a")
    fill_tenant(citus_manager, "a", tag="one", big=False)
    manifest_path = _backup(citus_manager, "a", tmp_path / "bk")
    fill_tenant(citus_manager, "a", tag="two", big=False)
    changed = tenant_digest(citus_manager, "a")
    code, out = _run(citus_config_file, "backup", "restore", str(manifest_path))
    assert code == 1 and "--force" in out
    assert tenant_digest(citus_manager, "a") == changed
    code, out = _run(citus_config_file, "backup", "restore", str(manifest_path), "--force")
    assert code == 0, out
    _on_worker(citus_manager, citus_cluster, "a")
    assert tenant_digest(citus_manager, "a") == _manifest_digest(manifest_path)
    [safety] = find_manifests(tmp_path / "bk.safety")  # beside the backups, before the swap
    assert {t: (d.rows, d.checksum) for t, d in safety.tables.items()} == changed


def test_verify_restore_check_through_the_coordinator_leaves_nothing(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, tmp_path: Path) -> None:
    citus_manager.provision("v")
    fill_tenant(citus_manager, "v", big=False)
    _backup(citus_manager, "v", tmp_path / "bk")
    code, out = _run(citus_config_file, "backup", "verify", str(tmp_path / "bk"),
                     "--restore-check")
    assert code == 0, out
    conn = citus_connect(citus_cluster)
    with conn.cursor() as cur:  # the check's scratch copy is gone, on coordinator and worker
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'docex$verify%%'")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM citus_schemas WHERE schema_name::text LIKE "
                    "'docex$verify%%'")
        assert cur.fetchone() == (0,)
    conn.close()
    assert [t.tenant_id for t in citus_manager.topology.discover().tenants] == ["v"]


def test_backup_while_writing_through_the_coordinator_is_one_snapshot(
        citus_manager: TenantDatabaseManager, citus_config_file: Path,
        tmp_path: Path) -> None:
    """pg_dump and the manifest's digests read the worker in separate transactions; with
    a writer inserting through the coordinator between them, they would see different
    rows unless they read one snapshot of the node."""
    from move_support import Writer

    citus_manager.provision("busy")
    fill_tenant(citus_manager, "busy", big=False)
    writer = Writer(citus_manager, "busy")
    writer.start()
    try:
        while len(writer.acked) < 20:  # the writer is under way before the first dump
            time.sleep(0.01)
        codes = [_run(citus_config_file, "--format", "json", "backup", "create", "--tenant", "busy",
                      "--dest", str(tmp_path / "bk")) for _ in range(3)]
    finally:
        writer.stop.set()
        writer.join()
    assert [c for c, _ in codes] == [0, 0, 0], codes
    acked = len(writer.acked)
    assert acked > 20 and writer.errors == 0
    manifests = sorted(find_manifests(tmp_path / "bk"), key=lambda m: m.started_at)
    counts = [m.tables["docbasket"].rows for m in manifests]
    # Each snapshot saw the seeded basket and some of the writer's, more each time.
    assert len(counts) == 3 and counts == sorted(counts), counts
    assert counts[0] > 1 and counts[-1] <= 1 + acked, (counts, acked)
    # The archive holds exactly the rows the manifest's snapshot counted.
    code, out = _run(citus_config_file, "backup", "verify", str(tmp_path / "bk"),
                     "--restore-check")
    assert code == 0, out


def test_backup_waits_for_a_writer_at_most_the_lock_timeout(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, tmp_path: Path) -> None:
    """An open write transaction keeps the dump from holding writers off: the tenant
    fails as locked after --lock-timeout (on the coordinator and on the worker the
    lock is propagated to), not after the writer's end."""
    citus_manager.provision("held")
    schema = citus_manager.topology.location("held")
    conn = citus_connect(citus_cluster)
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(f"LOCK TABLE {schema}.docbasket IN ROW EXCLUSIVE MODE")
        started = time.perf_counter()
        code, out = _run(citus_config_file, "--lock-timeout", "1s", "backup", "create",
                         "--tenant", "held", "--dest", str(tmp_path / "bk"))
        waited = time.perf_counter() - started
        cur.execute("ROLLBACK")
    conn.close()
    assert code == 1 and "locked" in out, out
    assert waited < 10, waited
    assert find_manifests(tmp_path / "bk") == []


def test_a_writer_held_only_on_a_worker_fails_the_tenant_as_locked(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, tmp_path: Path) -> None:
    """A writer that entered through a worker holds its lock there alone: the coordinator's
    SHARE lock is granted and the worker's times out, which Citus reports as a failed
    "essential" connection. That is a lock timeout too: the tenant fails as locked."""
    citus_manager.provision("heldw")
    schema = citus_manager.topology.location("heldw")
    conn = connect(citus_cluster.workers["w1"])
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SET LOCAL citus.enable_ddl_propagation TO off")  # this node only
        cur.execute(f"LOCK TABLE {schema}.docbasket IN ROW EXCLUSIVE MODE")
        code, out = _run(citus_config_file, "--lock-timeout", "1s", "backup", "create",
                         "--tenant", "heldw", "--dest", str(tmp_path / "bk"))
        cur.execute("ROLLBACK")
    conn.close()
    assert code == 1 and "locked: a lock on" in out and "essential" not in out, out
    assert find_manifests(tmp_path / "bk") == []
