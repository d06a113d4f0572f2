"""Migrations through a Citus coordinator: every shipped revision gives the catalog it gives
on plain PostgreSQL (read on the coordinator and on the worker's shards), by the fast path
and the online path; runs keep their per-tenant transaction, run records, lock timeout and
a ``--jobs`` limit per worker node."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from citus_support import CitusTestCluster, citus_connect, connect
from migration_helpers import HEAD, cli_json, scripts_with

from docex_ops.backends.base import Backend
from docex_ops.backends.catalog import Catalog, pg_catalog
from docex_ops.backends.pg_sql import DbapiConnection
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, RunStore, StepOptions, TenantStep, migrate_tenant

SCRIPTS = MigrationScripts()
_SHARD = re.compile(r"^(.*)_(\d+)$")


@pytest.fixture
def plain(settings_factory: Callable[..., Settings]) -> Iterator[PostgresBackend]:
    """A plain PostgreSQL server's backend (no Citus), to compare catalogs with."""
    backend = PostgresBackend(settings_factory("postgresql"))
    yield backend
    backend.dispose()


def _step(backend: Backend, tenant: str, target: str | None, action: str = "upgrade",
          tmp_path: Path | None = None, **options: Any) -> str:
    step = TenantStep(tenant, backend.location(tenant), None, target, action)
    result = migrate_tenant(backend, SCRIPTS, step, StepOptions(
        safety_dir=str(tmp_path) if tmp_path else None, **options))
    assert result.ok, (tenant, target, result.error)
    return result.path


def _unsharded(name: str) -> str:
    match = _SHARD.match(name)
    return match.group(1) if match else name


def worker_catalog(citus: CitusTestCluster, manager: TenantDatabaseManager,
                   tenant: str) -> Catalog:
    """The tenant's catalog as its worker holds it: the shard tables (``docbasket_102008``,
    their keys and indexes suffixed alike), names given back without the shard id."""
    node = manager.topology.citus_cluster("test").node_of(tenant)
    assert node is not None, f"{tenant} has no worker node"
    raw = connect(citus.workers[node])
    conn = DbapiConnection(raw)
    conn.exec_driver_sql("SET citus.override_table_visibility TO off")  # show the shards
    found = pg_catalog(conn, manager.topology.location(tenant))  # type: ignore[arg-type]
    raw.close()
    shards: Catalog = {}
    for table, entry in found.items():
        if _SHARD.match(table) is None or table.startswith("alembic_version"):
            continue  # the metadata's shell tables, and the version table
        shards[_unsharded(table)] = {
            "columns": entry["columns"],
            "pk": (_unsharded(entry["pk"][0]), entry["pk"][1]) if entry["pk"] else None,
            "unique": {(_unsharded(n), c) for n, c in entry["unique"]},
            "fks": {(_unsharded(n), c, _unsharded(r), d) for n, c, r, d in entry["fks"]},
            "indexes": {(_unsharded(n), c) for n, c in entry["indexes"]}}
    return shards


def test_every_revision_same_on_citus_as_on_plain_postgres_both_paths_both_ways(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        plain: PostgresBackend, tmp_path: Path) -> None:
    coordinator, topology = citus_manager.backend, citus_manager.topology
    for tenant in ("fast", "online"):
        assert topology.create(tenant, "")  # a distributed schema at base, no table yet
        plain.create(tenant, "")
    ups = list(SCRIPTS.order)
    downs = [*reversed(ups[:-1]), None]
    for action, revisions in (("upgrade", ups), ("downgrade", downs)):
        for revision in revisions:
            for tenant in ("fast", "online"):
                # Downgrades are online only; forced: 0003's narrowing is refused without.
                fast = action == "upgrade" and tenant == "fast"
                path = _step(coordinator, tenant, revision, action, tmp_path,
                             fast_path=fast, force=action == "downgrade")
                assert path == ("fast" if fast else "online"), (tenant, revision)
                _step(plain, tenant, revision, action, tmp_path, fast_path=fast,
                      force=action == "downgrade")
            expected = plain.catalog("fast")
            assert plain.catalog("online") == expected, revision
            assert coordinator.catalog("fast") == expected, (action, revision)
            assert coordinator.catalog("online") == expected, (action, revision)
            if revision is not None:
                assert worker_catalog(citus_cluster, citus_manager, "fast") == expected
                assert worker_catalog(citus_cluster, citus_manager, "online") == expected
    assert topology.read_revisions(["fast", "online"]) == {"fast": None, "online": None}


@pytest.mark.parametrize("start", [None, *SCRIPTS.order[:-1]])
def test_from_every_revision_to_head_both_paths_equal_provisioning(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        start: str | None) -> None:
    coordinator, topology = citus_manager.backend, citus_manager.topology
    citus_manager.provision("provisioned")
    for tenant in ("fast", "online"):
        topology.create(tenant, "")
        if start is not None:
            _step(coordinator, tenant, start, fast_path=False)
    assert _step(coordinator, "fast", HEAD, fast_path=True) == "fast"  # one rendered script
    assert _step(coordinator, "online", HEAD, fast_path=False) == "online"
    expected = coordinator.catalog("provisioned")
    assert coordinator.catalog("fast") == coordinator.catalog("online") == expected
    assert worker_catalog(citus_cluster, citus_manager, "fast") == expected
    assert worker_catalog(citus_cluster, citus_manager, "online") == expected
    placed = topology.placements(["fast", "online"])
    assert all(p is not None and p.distributed and p.node for p in placed.values())


# A small revision of two statements (a column and an index): on Citus they must be sent
# one at a time, and both must reach the worker's shard.
NOTE = {"0004_note": 'op.add_column("document", sa.Column("note", sa.Text()))  # fast\n'
                     'op.create_index("idx_document_note", "document", ["note"])'}


def _worker_has(citus: CitusTestCluster, manager: TenantDatabaseManager,
                tenant: str) -> tuple[bool, bool]:
    catalog = worker_catalog(citus, manager, tenant)["document"]
    return (any(c[0] == "note" for c in catalog["columns"]),
            ("idx_document_note", ("note",)) in catalog["indexes"])


def test_migrate_upgrade_through_the_coordinator_reaches_each_worker_with_run_records(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, tmp_path: Path) -> None:
    tenants = ["n1", "n2", "n3", "n4"]
    for tenant in tenants:
        citus_manager.provision(tenant)
    scripts = str(scripts_with(tmp_path, NOTE))
    code, report = cli_json(citus_config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--jobs", "2", "--allow", "index-not-concurrent")
    assert code == 0, report
    rows = {r["tenant"]: r for r in report["tenants"]}
    assert {t: (rows[t]["status"], rows[t]["to"]) for t in tenants} == {
        t: ("done", "0004_note") for t in tenants}
    nodes = citus_manager.topology.citus_cluster("test").nodes_of(tenants)
    assert set(nodes.values()) == set(citus_cluster.nodes)  # both workers were migrated
    for tenant in tenants:
        assert _worker_has(citus_cluster, citus_manager, tenant) == (True, True), tenant
    store = RunStore(citus_manager.backend.control_engine())
    [run] = store.list(1)
    assert run.run_id == report["run_id"] and run.status == "done"
    assert {t["tenant_id"]: t["status"] for t in store.get(run.run_id)[1]} == {
        t: "done" for t in tenants}
    code, status = cli_json(citus_config_file, "migrate", "--scripts", scripts, "status")
    assert code == 0 and {t["tenant"]: t["state"] for t in status["tenants"]} == {
        t: "current" for t in tenants}


def test_a_failing_statement_rolls_the_tenant_back_on_its_worker(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        tmp_path: Path) -> None:
    # The second statement fails after the first reached the worker: one transaction, so
    # neither the column nor the version change is left on the coordinator or the worker.
    citus_manager.provision("rb")
    broken = {"0004_half": 'op.add_column("document", sa.Column("note", sa.Text()))  # fast\n'
                           'op.create_index("idx_x", "document", ["no_such_column"])'}
    scripts = MigrationScripts(scripts_with(tmp_path, broken))
    step = TenantStep("rb", citus_manager.topology.location("rb"), HEAD, "0004_half",
                      "upgrade")
    result = migrate_tenant(citus_manager.backend, scripts, step, StepOptions())
    assert result.status == "failed" and "no_such_column" in str(result.error)
    assert _worker_has(citus_cluster, citus_manager, "rb") == (False, False)
    assert citus_manager.topology.read_revisions(["rb"]) == {"rb": HEAD}


def _hold(citus: CitusTestCluster, schema: str) -> Any:
    """Another coordinator session reading the tenant's table in an open transaction: its
    lock on the coordinator's table blocks the migration's ALTER TABLE there."""
    conn = citus_connect(citus)
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{schema}".document')
    return conn


def test_a_tenant_locked_on_the_coordinator_fails_with_the_lock_timeout_others_go_on(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, tmp_path: Path) -> None:
    for tenant in ("free", "held"):
        citus_manager.provision(tenant)
    holder = _hold(citus_cluster, citus_manager.topology.location("held"))
    try:
        code, report = cli_json(citus_config_file, "migrate", "--scripts",
                                str(scripts_with(tmp_path, NOTE)), "upgrade",
                                "--lock-timeout", "0.5", "--continue-on-error",
                                "--allow", "index-not-concurrent")
    finally:
        pid = holder.get_backend_pid()
        holder.rollback()
        holder.close()
    assert code == 1, report
    rows = {r["tenant"]: r for r in report["tenants"]}
    assert rows["free"]["status"] == "done"
    assert rows["held"]["status"] == "failed"
    assert "lock timeout" in rows["held"]["error"] and f"pid {pid}" in rows["held"]["error"]
    assert citus_manager.topology.read_revisions(["free", "held"]) == {
        "free": "0004_note", "held": HEAD}
    assert _worker_has(citus_cluster, citus_manager, "held") == (False, False)
    store = RunStore(citus_manager.backend.control_engine())
    assert {t["tenant_id"]: t["status"] for t in store.get(report["run_id"])[1]} == {
        "free": "done", "held": "failed"}


def _balanced(manager: TenantDatabaseManager, citus: CitusTestCluster, tenants: list[str]
              ) -> dict[str | None, list[str]]:
    """Provision ``tenants``, then place half on each worker (Citus places new schemas by
    its own rule; the test needs two on each node)."""
    cluster = manager.topology.citus_cluster("test")
    for tenant in tenants:
        manager.provision(tenant)
    conn = citus_connect(citus)
    for tenant, name in zip(tenants, [*citus.nodes] * len(tenants), strict=False):
        if cluster.node_of(tenant) != name:
            host, port = citus.nodes[name].split(":")
            with conn.cursor() as cur:
                cur.execute("SELECT citus_schema_move(%s::regnamespace, %s, %s, "
                            "'block_writes')", (cluster.location(tenant), host, int(port)))
    conn.close()
    return cluster.by_node(tenants)


def test_jobs_is_a_limit_per_worker_node(citus_manager: TenantDatabaseManager,
                                         citus_cluster: CitusTestCluster,
                                         citus_config_file: Path, tmp_path: Path) -> None:
    tenants = ["j1", "j2", "j3", "j4"]
    by_node = _balanced(citus_manager, citus_cluster, tenants)
    assert sorted(len(ids) for ids in by_node.values()) == [2, 2], by_node
    log = f"public.{citus_manager.topology.location('log')}"
    conn = citus_connect(citus_cluster)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {log} (schema text, started timestamptz, "
                    "ended timestamptz)")
    # Each tenant's migration logs when its transaction started and when it ended, 1 s on.
    timed = {"0004_timed": f"""
        op.execute("SELECT pg_sleep(1)")  # fast
        op.execute("INSERT INTO {log} SELECT current_schema(), now(), clock_timestamp()")"""}
    code, report = cli_json(citus_config_file, "migrate", "--scripts",
                            str(scripts_with(tmp_path, timed)), "upgrade", "--jobs", "1")
    assert code == 0, report
    with conn.cursor() as cur:
        cur.execute(f"SELECT schema, started, ended FROM {log}")
        spans = cur.fetchall()
    conn.close()
    node_of = {citus_manager.topology.location(t): n for n, ids in by_node.items()
               for t in ids}
    assert sorted(s for s, _, _ in spans) == sorted(node_of)

    def overlap(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        return bool(a[1] < b[2] and b[1] < a[2])
    pairs = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]]
    same_node = [overlap(a, b) for a, b in pairs if node_of[a[0]] == node_of[b[0]]]
    other_node = [overlap(a, b) for a, b in pairs if node_of[a[0]] != node_of[b[0]]]
    assert same_node == [False, False]  # one at a time on each node...
    assert any(other_node)  # ...while the other node's tenants ran alongside


def test_a_restore_or_split_slot_is_its_worker_nodes(citus_manager: TenantDatabaseManager,
                                                     citus_cluster: CitusTestCluster) -> None:
    by_node = _balanced(citus_manager, citus_cluster, ["s1", "s2"])
    (first, [on_first]), (second, [on_second]) = by_node.items()
    topology = citus_manager.topology
    citus_manager.set_server_jobs(1)
    try:
        with citus_manager.server_slot(on_first) as server:
            assert server == topology.control_server  # every tenant is reached through it
            slots = topology._server_jobs
            assert not slots[first].acquire(blocking=False)  # that node's one slot: taken
            with citus_manager.server_slot(on_second):  # the other node's: not waited for
                assert set(slots) == {first, second}
    finally:
        citus_manager.set_server_jobs(None)


def test_revisions_are_read_on_the_workers_as_the_coordinator_reads_them(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        tmp_path: Path) -> None:
    from docex_ops.backends import pg_discover
    from docex_ops.topology import citus_revisions

    topology = citus_manager.topology
    for tenant in ("r1", "r2", "r3"):
        citus_manager.provision(tenant)
    _step(citus_manager.backend, "r2", "0002_docex_2_9_9", "downgrade", tmp_path, force=True)
    topology.create("r4", "")  # distributed, no table yet: not versioned
    found = {t.tenant_id: (t.revision, t.node) for t in topology.discover().tenants}
    assert {t: rev for t, (rev, _) in found.items()} == {
        "r1": HEAD, "r2": "0002_docex_2_9_9", "r3": HEAD, "r4": None}
    schemas = [topology.location(t) for t in ("r1", "r2", "r3")]
    raw = citus_connect(citus_cluster)
    raw.autocommit = False
    conn = DbapiConnection(raw)
    # One command per worker, each answering for the tenants it holds...
    answers = conn.exec_driver_sql(citus_revisions._BY_WORKER_SQL, {
        "schemas": schemas, "lock_timeout": "1000ms"}).all()
    conn.rollback()
    nodes = {node for t, (_, node) in found.items() if t != "r4"}
    assert len(answers) == len(nodes) and all(ok for ok, _ in answers), answers
    # ...the same revisions as the coordinator's read, one routed query per tenant.
    through_coordinator, locked = pg_discover.read_revisions(conn, schemas, 5.0)  # type: ignore[arg-type]
    on_workers, _ = citus_revisions.read_revisions(conn, schemas, 5.0)  # type: ignore[arg-type]
    raw.close()
    assert on_workers == through_coordinator and locked == set()
    assert on_workers == {topology.location(t): found[t][0] for t in ("r1", "r2", "r3")}


def test_revisions_read_on_each_worker_directly_and_where_that_fails_through_the_coordinator(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        tmp_path: Path) -> None:
    """Each worker read over docex-ops' own connections (in parallel, several per worker
    when it holds many shards) gives the coordinator's answer; a worker docex-ops cannot
    log in to is read through the coordinator."""
    from dataclasses import replace

    from docex_ops.backends import pg_discover
    from docex_ops.topology import citus_revisions

    topology = citus_manager.topology
    tenants = [f"d{i}" for i in range(4)]
    for tenant in tenants:
        citus_manager.provision(tenant)
    _step(citus_manager.backend, "d1", "0002_docex_2_9_9", "downgrade", tmp_path, force=True)
    schemas = [topology.location(t) for t in tenants]
    direct = citus_manager.settings.postgres
    raw = citus_connect(citus_cluster)
    raw.autocommit = False
    conn = DbapiConnection(raw)
    coordinator, _ = pg_discover.read_revisions(conn, schemas, 5.0)  # type: ignore[arg-type]
    assert coordinator[topology.location("d1")] == "0002_docex_2_9_9"
    # A worker's shards in reads of at least 200, at most 4 reads at once.
    parts = [citus_revisions._parts("h", 1, ["a"] * n, ["b"] * n) for n in (1, 399, 800, 5000)]
    assert [len(p) for p in parts] == [1, 1, 4, 4]
    assert sum(len(names) for _, _, names, _ in parts[3]) == 5000
    on_workers, locked = citus_revisions.read_revisions(
        conn, schemas, 5.0, direct)  # type: ignore[arg-type]
    assert on_workers == coordinator and locked == set()
    # A login the workers refuse: the coordinator reads them instead, same answer.
    refused = replace(direct, user="docex_no_such_role")
    assert citus_revisions._read_on(refused, ("127.0.0.1", citus_cluster.workers["w1"].port,
                                              [schemas[0]], ["x"]), 5.0) == {}
    assert citus_revisions.read_revisions(
        conn, schemas, 5.0, refused)[0] == coordinator  # type: ignore[arg-type]
    raw.close()


def test_a_version_table_locked_on_its_worker_is_reported_locked_within_the_lock_timeout(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path) -> None:
    """A lock held on the worker's shard of a tenant's version table: the direct read and
    the coordinator's per-worker command give up, and the coordinator's per-tenant read,
    routed to that worker, waits the lock timeout there too (not for the lock's holder):
    status names the tenant locked and reads the others."""
    import json
    import subprocess

    from migration_helpers import spawn

    for tenant in ("vl1", "vl2"):
        citus_manager.provision(tenant)
    schema = citus_manager.topology.location("vl1")
    coordinator = citus_connect(citus_cluster)
    with coordinator.cursor() as cur:
        cur.execute("SELECT shard_name, nodeport FROM citus_shards "
                    "WHERE table_name = %s::regclass", (f"{schema}.alembic_version",))
        shard, port = cur.fetchone()
    coordinator.close()
    worker = next(w for w in citus_cluster.workers.values() if w.port == port)
    holder = connect(worker)
    with holder.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SET LOCAL citus.enable_ddl_propagation TO off")
        cur.execute(f"LOCK TABLE {shard} IN ACCESS EXCLUSIVE MODE")
        proc = spawn(citus_config_file, "--lock-timeout", "1", "--format", "json",
                     "migrate", "status")
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        finally:
            cur.execute("ROLLBACK")
    holder.close()
    assert proc.returncode is not None and proc.returncode >= 0, (out, err)
    tenants = {t["tenant"]: t for t in json.loads(out)["data"]["tenants"]}
    assert "locked" in json.dumps(tenants["vl1"]), tenants["vl1"]
    assert tenants["vl2"]["revision"] == HEAD, tenants["vl2"]
