"""``tenants move`` and ``tenants rebalance`` on a real Citus cluster: Citus moves the
distributed schema, docex-ops proves the rows, journals the move and writes the audit line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from citus_support import (
    CitusTestCluster,
    citus_connect,
    citus_mapping,
    citus_missing,
    connect,
    started_citus,
)
from json_support import json_data
from move_support import Writer, basket
from pg_clusters import free_port
from sqlalchemy import insert, select
from test_fleet_cli import _json, _run

from docex_ops import audit_trail
from docex_ops.config.settings import settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move.citus import journal_of
from docex_ops.move.journal import SWITCHED
from docex_ops.schema.head import docbasket
from docex_ops.topology.citus import CitusCluster


def _cluster(manager: TenantDatabaseManager) -> CitusCluster:
    return manager.topology.citus_cluster("a Citus topology")


def _place(citus: CitusTestCluster, manager: TenantDatabaseManager, tenant_id: str,
           node: str) -> None:
    """Put the tenant on ``node`` from outside docex-ops (Citus's own call)."""
    cluster = _cluster(manager)
    if cluster.node_of(tenant_id) == node:
        return
    host, port = citus.nodes[node].split(":")
    conn = citus_connect(citus)
    with conn.cursor() as cur:
        cur.execute("SELECT citus_schema_move(%s::regnamespace, %s, %s, 'block_writes')",
                    (cluster.location(tenant_id), host, int(port)))
    conn.close()
    assert cluster.node_of(tenant_id) == node


def _seed(manager: TenantDatabaseManager, tenant_id: str, rows: int) -> None:
    manager.provision(tenant_id)
    with manager.tenant_transaction(tenant_id) as session:
        session.execute(insert(docbasket), [basket(f"seed-{n}") for n in range(rows)])


def _rows_on_worker(citus: CitusTestCluster, node: str, schema: str) -> int | None:
    """Rows of the tenant's docbasket shard as the worker's own catalog holds it (None:
    the worker has no docbasket shard of the schema)."""
    conn = connect(citus.workers[node])
    with conn.cursor() as cur:
        cur.execute("SET citus.show_shards_for_app_name_prefixes TO '*'")  # Citus hides them
        cur.execute("SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables "
                    "WHERE schemaname = %s AND tablename LIKE 'docbasket\\_%%'", (schema,))
        found = cur.fetchall()
        if not found:
            conn.close()
            return None
        cur.execute(f"SELECT count(*) FROM {found[0][0]}")
        count = int(cur.fetchone()[0])
    conn.close()
    return count


def _names(manager: TenantDatabaseManager, tenant_id: str) -> set[str]:
    with manager.tenant_transaction(tenant_id) as session:
        return set(session.execute(select(docbasket.c.name)).scalars())


@pytest.fixture
def audit_file(tmp_path: Path, citus_config_file: Path) -> Iterator[Path]:
    """The CLI config's audit trail (``logging.audit_file``)."""
    path = tmp_path / "audit.jsonl"
    raw = yaml.safe_load(citus_config_file.read_text())
    raw["logging"] = {"audit_file": str(path)}
    citus_config_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    yield path
    audit_trail.configure(None)


def _audit(path: Path, action: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["action"] == action]


def test_a_tenant_with_rows_moves_from_w1_to_w2(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, audit_file: Path) -> None:
    _seed(citus_manager, "mv1", 300)
    _place(citus_cluster, citus_manager, "mv1", "w1")
    schema = _cluster(citus_manager).location("mv1")
    assert _rows_on_worker(citus_cluster, "w1", schema) == 300
    row = _json(_run(citus_config_file, "tenants", "move", "mv1", "--to", "w2"))
    assert (row["from"], row["to"], row["outcome"], row["rows"]) == ("w1", "w2", "moved", 300)
    assert _cluster(citus_manager).node_of("mv1") == "w2"
    assert _rows_on_worker(citus_cluster, "w2", schema) == 300  # the worker's own catalog
    assert len(_names(citus_manager, "mv1")) == 300
    [event] = _audit(audit_file, "tenant.move")
    assert event["outcome"] == "ok" and event["tenant"] == "mv1"
    assert event["detail"]["from"] == "w1" and event["detail"]["to"] == "w2"
    assert event["detail"]["mode"] == "auto" and event["detail"]["rows"] == 300
    record = journal_of(_cluster(citus_manager)).get("mv1")
    assert record is not None and (record.source, record.target, record.step) == (
        "w1", "w2", SWITCHED)
    # By host:port too, and back: the journal row of the finished move is replaced.
    back = _json(_run(citus_config_file, "tenants", "move", "mv1", "--to",
                        citus_cluster.nodes["w1"]))
    assert (back["to"], back["outcome"]) == ("w1", "moved")
    assert journal_of(_cluster(citus_manager)).get("mv1").target == "w1"  # type: ignore[union-attr]


def test_writes_during_an_online_move_are_all_there_after_it(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster) -> None:
    from docex_ops.move.movers import move_tenant

    _seed(citus_manager, "mv2", 2000)
    _place(citus_cluster, citus_manager, "mv2", "w1")
    writer = Writer(citus_manager, "mv2")
    writer.start()
    try:
        while len(writer.acked) < 20:  # the writer is writing before the move starts
            writer.stop.wait(0.01)
        result = move_tenant(citus_manager, "mv2", "w2")
        after_move = len(writer.acked)
        while len(writer.acked) < after_move + 20:  # and goes on writing on w2 after it
            writer.stop.wait(0.01)
    finally:
        writer.stop.set()
        writer.join(30)
    assert result.outcome == "moved" and result.rows >= 2000 + 20
    assert _cluster(citus_manager).node_of("mv2") == "w2"
    names = _names(citus_manager, "mv2")
    assert set(writer.acked) <= names, "acknowledged writes were lost"
    assert len(names) == 2000 + len(writer.acked)


def test_offline_move_blocks_writes_and_compares_in_its_transaction(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, audit_file: Path) -> None:
    _seed(citus_manager, "mv3", 150)
    _place(citus_cluster, citus_manager, "mv3", "w2")
    row = _json(_run(citus_config_file, "tenants", "move", "mv3", "--to", "w1",
                       "--offline"))
    assert (row["from"], row["to"], row["outcome"], row["rows"]) == ("w2", "w1", "moved", 150)
    assert row["freeze_s"] is not None and row["freeze_s"] > 0
    assert _cluster(citus_manager).node_of("mv3") == "w1"
    assert _rows_on_worker(citus_cluster, "w1", _cluster(citus_manager).location("mv3")) == 150
    [event] = _audit(audit_file, "tenant.move")
    assert event["detail"]["mode"] == "block_writes"


def test_moving_to_the_node_it_is_on_changes_nothing(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path) -> None:
    _seed(citus_manager, "mv4", 5)
    _place(citus_cluster, citus_manager, "mv4", "w1")
    result = _run(citus_config_file, "tenants", "move", "mv4", "--to", "w1")
    assert result.exit_code == 0, result.output
    assert "tenant mv4 is already on w1; nothing was moved" in result.stderr
    assert json_data(result.stdout)["outcome"] == "unchanged"
    assert journal_of(_cluster(citus_manager)).get("mv4") is None  # nothing journalled


def test_hostile_ids_and_unknown_nodes_are_refused_before_any_sql(
        citus_cluster: CitusTestCluster, citus_config_file: Path, schema_prefix: str,
        tmp_path: Path) -> None:
    # A coordinator nobody listens on: a refusal that needed a connection would say so.
    dead = citus_mapping(citus_cluster, schema_prefix)
    dead["database"]["postgres"]["port"] = free_port()
    dead_file = tmp_path / "dead.yaml"
    dead_file.write_text(yaml.safe_dump(dead))
    for config, args, words in [
        (dead_file, ("x; drop schema public", "--to", "w2"), "tenant id"),
        (dead_file, ("mv5", "--to", "nowhere"), "is not a worker node"),
        (citus_config_file, ("mv5", "--to", "127.0.0.1:1"), "no active worker node"),
    ]:
        result = _run(config, "tenants", "move", *args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], result.stderr


@pytest.fixture(scope="module")
def own_citus() -> Iterator[CitusTestCluster]:
    """A cluster of the rebalance tests' own: a rebalance moves any schema of the cluster,
    and the session's cluster holds other tests' tenants in any layout."""
    missing = citus_missing()
    if missing:
        pytest.skip(missing)
    with started_citus() as cluster:
        yield cluster


@pytest.fixture
def own_manager(own_citus: CitusTestCluster, schema_prefix: str
                ) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    yield TenantDatabaseManager(settings_from_mapping(citus_mapping(own_citus, schema_prefix),
                                                      "<test own citus>"))
    TenantDatabaseManager.reset()


@pytest.fixture
def own_config(own_citus: CitusTestCluster, schema_prefix: str, tmp_path: Path) -> Path:
    path = tmp_path / "own-citus.yaml"
    path.write_text(yaml.safe_dump(citus_mapping(own_citus, schema_prefix), sort_keys=False))
    return path


def test_rebalance_plans_with_citus_then_executes_and_checks(
        own_manager: TenantDatabaseManager, own_citus: CitusTestCluster,
        own_config: Path) -> None:
    citus_manager, citus_cluster, citus_config_file = own_manager, own_citus, own_config
    ids = [f"rb{n}" for n in range(6)]
    for n, tenant_id in enumerate(ids):
        _seed(citus_manager, tenant_id, 10 + n)
        _place(citus_cluster, citus_manager, tenant_id, "w1")  # all on w1: unbalanced
    planned = _json(_run(citus_config_file, "tenants", "rebalance", "--dry-run"))
    ours = [m for m in planned["moves"] if m["tenant"] in ids]
    assert ours, planned
    assert all((m["from"], m["to"]) == ("w1", "w2") for m in ours)
    assert {n: _cluster(citus_manager).node_of(n) for n in ids} == dict.fromkeys(ids, "w1")
    assert _json(_run(citus_config_file, "tenants", "rebalance", "--dry-run", "--by-size"))
    done = _json(_run(citus_config_file, "tenants", "rebalance", "--execute"))
    moved = {m["tenant"]: m for m in done["moves"] if m["tenant"] in ids}
    assert moved and all(m["moved"] == "moved" for m in moved.values()), done
    nodes = _cluster(citus_manager).nodes_of(ids)
    assert {nodes[t] for t in moved} == {"w2"}
    assert set(nodes.values()) == {"w1", "w2"}
    for tenant_id in moved:
        assert len(_names(citus_manager, tenant_id)) == 10 + ids.index(tenant_id)
    again = _json(_run(citus_config_file, "tenants", "rebalance", "--dry-run"))
    assert again["moves"] == []  # Citus finds the cluster balanced now


def test_the_online_proof_tells_later_writes_from_lost_or_changed_rows(
        citus_cluster: CitusTestCluster, schema_prefix: str) -> None:
    """The row-by-row comparison, on plain tables of the same name on the two workers."""
    from docex_ops.move import citus_verify as cv
    from docex_ops.topology.citus import CitusNode

    table = f"public.{schema_prefix}proof"
    conns = {n: connect(citus_cluster.workers[n]) for n in ("w1", "w2")}
    try:
        for conn in conns.values():
            with conn.cursor() as cur:
                cur.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, v text)")
        with conns["w1"].cursor() as cur:  # the source copy at the switch
            cur.execute(f"INSERT INTO {table} VALUES ('a', '1'), ('b', '2'), ('c', '3')")
        with conns["w2"].cursor() as cur:  # the copy: 'a' damaged first, then the rest
            cur.execute(f"INSERT INTO {table} VALUES ('a', 'damaged')")
            cur.execute(f"INSERT INTO {table} VALUES ('b', '2'), ('c', '3')")

        def compare() -> cv.RowComparison:
            engines = {n: cv.worker_engine(_settings_cluster(citus_cluster, schema_prefix),
                                           CitusNode(n, *_host_port(citus_cluster, n)))
                       for n in conns}
            try:
                with cv.retained_source(engines["w1"], {"t": table}, 5.0) as kept:
                    return kept.compare(engines["w2"])
            finally:
                for engine in engines.values():
                    engine.dispose()

        damaged = compare()  # older than rows copied unchanged: not a later write
        assert not damaged.equal and damaged.missing == 1 and damaged.tables == ["t"]
        with conns["w2"].cursor() as cur:
            cur.execute(f"UPDATE {table} SET v = '1' WHERE id = 'a'")  # repaired
            cur.execute(f"UPDATE {table} SET v = 'new' WHERE id = 'b'")  # writes after
            cur.execute(f"INSERT INTO {table} VALUES ('d', '4')")       # the switch
        later = compare()
        assert later.equal and later.written_after == 2 and later.rows == 4, later
        with conns["w2"].cursor() as cur:
            cur.execute(f"DELETE FROM {table} WHERE id = 'c'")  # a row of the copy lost
        lost = compare()
        assert not lost.equal and lost.missing == 1, lost
    finally:
        for conn in conns.values():
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
            conn.close()


def _host_port(citus: CitusTestCluster, node: str) -> tuple[str, int]:
    host, port = citus.nodes[node].split(":")
    return host, int(port)


def _settings_cluster(citus: CitusTestCluster, prefix: str) -> CitusCluster:
    settings = settings_from_mapping(citus_mapping(citus, prefix), "<test>")
    return TenantDatabaseManager(settings).topology.citus_cluster("a Citus topology")


def test_a_rerun_after_a_crash_records_how_the_move_ended(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster) -> None:
    from move_support import Crash

    from docex_ops.move import citus as citus_move
    from docex_ops.move.journal import COPYING
    from docex_ops.move.run import MoveOptions

    def crash_at(step: str) -> Any:
        def hook(reached: str) -> None:
            if reached == step:
                raise Crash(step)
        return hook

    _seed(citus_manager, "mv6", 40)
    _place(citus_cluster, citus_manager, "mv6", "w1")
    journal = journal_of(_cluster(citus_manager))
    # Offline: the crash is inside the transaction that moves, so nothing moved.
    with pytest.raises(Crash):
        citus_move.move_tenant(citus_manager, "mv6", "w2", MoveOptions(offline=True),
                               on_step=crash_at(COPYING))
    assert journal.get("mv6").step == COPYING  # type: ignore[union-attr]
    undone = citus_move.move_tenant(citus_manager, "mv6", "w2")
    assert (undone.outcome, undone.rows) == ("rolled back", 40)
    assert journal.get("mv6") is None and _cluster(citus_manager).node_of("mv6") == "w1"
    # Online, crashed before recording the end while Citus did switch: completed.
    with pytest.raises(Crash):
        citus_move.move_tenant(citus_manager, "mv6", "w2", on_step=crash_at(COPYING))
    _place(citus_cluster, citus_manager, "mv6", "w2")  # what Citus finished meanwhile
    done = citus_move.move_tenant(citus_manager, "mv6", "w2")
    assert (done.outcome, done.rows) == ("completed", 40)
    assert journal.get("mv6").step == SWITCHED  # type: ignore[union-attr]


def test_a_rebalance_job_that_ends_badly_exits_1_with_citus_state(
        own_manager: TenantDatabaseManager, own_citus: CitusTestCluster,
        own_config: Path) -> None:
    citus_manager, citus_cluster, citus_config_file = own_manager, own_citus, own_config
    import threading

    import psycopg2

    ids = [f"rc{n}" for n in range(6)]
    for tenant_id in ids:
        _seed(citus_manager, tenant_id, 5)
        _place(citus_cluster, citus_manager, tenant_id, "w1")
    stopped = threading.Event()

    def stop_the_job() -> None:  # cancels the job as soon as Citus has one running
        conn = citus_connect(citus_cluster)
        with conn.cursor() as cur:
            while not stopped.is_set():
                try:
                    cur.execute("SELECT citus_rebalance_stop()")
                    stopped.set()
                except psycopg2.Error:  # no rebalance running yet
                    stopped.wait(0.02)
        conn.close()

    stopper = threading.Thread(target=stop_the_job, daemon=True)
    stopper.start()
    try:
        result = _run(citus_config_file, "tenants", "rebalance", "--execute", "--offline")
    finally:
        stopped.set()
        stopper.join(10)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert "Citus rebalance job" in lines[-1] and "cancel" in lines[-1], result.stderr


def _plant_on_target(citus: CitusTestCluster, node: str, schema: str) -> Any:
    """On worker ``node``: every docbasket shard of ``schema`` created there gets a trigger
    that changes each row written into it (a target that does not keep what it is sent).
    Returns the undo."""
    conn = connect(citus.workers[node])
    with conn.cursor() as cur:
        # Test objects of this worker alone, not sent on to the other nodes by Citus.
        cur.execute("SET citus.enable_ddl_propagation TO off")
        cur.execute("""
CREATE OR REPLACE FUNCTION public.docex_test_change_row() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN NEW.name := NEW.name || ' (changed)'; RETURN NEW; END $$;
CREATE OR REPLACE FUNCTION public.docex_test_plant() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT object_identity FROM pg_event_trigger_ddl_commands()
           WHERE command_tag = 'CREATE TABLE' AND object_identity LIKE %s LOOP
    EXECUTE format('CREATE TRIGGER docex_test_change BEFORE INSERT ON %%s FOR EACH ROW '
                   'EXECUTE FUNCTION public.docex_test_change_row()', r.object_identity);
    EXECUTE format('ALTER TABLE %%s ENABLE ALWAYS TRIGGER docex_test_change',
                   r.object_identity);
  END LOOP;
END $$;
CREATE EVENT TRIGGER docex_test_plant ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.docex_test_plant();
""", (f"{schema}.docbasket\\_%",))
    conn.close()

    def undo() -> None:
        conn = connect(citus.workers[node])
        with conn.cursor() as cur:
            cur.execute("SET citus.enable_ddl_propagation TO off")
            cur.execute("DROP EVENT TRIGGER IF EXISTS docex_test_plant")
        conn.close()
    return undo


def test_offline_move_rolls_back_when_the_target_rows_differ(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, audit_file: Path) -> None:
    """A real difference on the target (its shard changes every row Citus copies into
    it): the digests differ, the move rolls back with its transaction, the tenant stays
    on its node, readable, and the target keeps nothing of it."""
    _seed(citus_manager, "mv7", 30)
    _place(citus_cluster, citus_manager, "mv7", "w1")
    schema = _cluster(citus_manager).location("mv7")
    before = _names(citus_manager, "mv7")
    undo = _plant_on_target(citus_cluster, "w2", schema)
    try:
        result = _run(citus_config_file, "tenants", "move", "mv7", "--to", "w2", "--offline")
    finally:
        undo()
    assert result.exit_code == 1, result.output
    assert "differ from the source in docbasket" in result.stderr
    assert "rolled back" in result.stderr
    assert _cluster(citus_manager).node_of("mv7") == "w1"
    assert _names(citus_manager, "mv7") == before  # read through the coordinator, from w1
    assert _rows_on_worker(citus_cluster, "w1", schema) == 30
    assert _rows_on_worker(citus_cluster, "w2", schema) is None  # no shard left on w2
    assert journal_of(_cluster(citus_manager)).get("mv7") is None  # no move pending
    [event] = _audit(audit_file, "tenant.move")
    assert event["outcome"] == "failed" and event["tenant"] == "mv7"
    assert event["detail"]["mode"] == "block_writes"
    assert event["detail"]["rolled_back_at"] == "copying"
    # Nothing is left to recover: the next move of the tenant goes ahead and is proven.
    row = _json(_run(citus_config_file, "tenants", "move", "mv7", "--to", "w2", "--offline"))
    assert (row["outcome"], row["rows"]) == ("moved", 30)
    assert _names(citus_manager, "mv7") == before


def _commit_setting(citus: CitusTestCluster, node: str, statements: list[str]) -> None:
    conn = connect(citus.workers[node])
    with conn.cursor() as cur:
        cur.execute("SET citus.enable_ddl_propagation = off")  # role settings on a worker
        for statement in statements:
            cur.execute(statement)
        cur.execute("SELECT pg_reload_conf()")
    conn.close()


@pytest.mark.parametrize("turned_off_by", [
    "ALTER SYSTEM SET synchronous_commit = off",
    "ALTER ROLE postgres IN DATABASE docex SET synchronous_commit = 'false'"])
def test_an_online_move_from_a_node_that_commits_asynchronously_is_refused(
        citus_manager: TenantDatabaseManager, citus_cluster: CitusTestCluster,
        citus_config_file: Path, audit_file: Path, turned_off_by: str) -> None:
    """Citus waits for the source's WAL write position, which acknowledged asynchronous
    commits can be ahead of: under load it switched without the last 10-17 writes."""
    for tenant_id in ("mv9", "mv9a", "mv9b", "mv9c"):  # all on w1: rebalance would move
        _seed(citus_manager, tenant_id, 20)
        _place(citus_cluster, citus_manager, tenant_id, "w1")
    planned = _json(_run(citus_config_file, "tenants", "rebalance", "--dry-run"))
    assert any(m["from"] == "w1" for m in planned["moves"]), planned
    _commit_setting(citus_cluster, "w1", [turned_off_by])
    try:
        refused = _run(citus_config_file, "tenants", "move", "mv9", "--to", "w2")
        assert refused.exit_code == 1, refused.output
        [line] = refused.stderr.strip().splitlines()
        assert "synchronous_commit" in line and "'w1'" in line and "--offline" in line, line
        assert _cluster(citus_manager).node_of("mv9") == "w1"
        assert journal_of(_cluster(citus_manager)).get("mv9") is None  # refused before it
        rebalance = _run(citus_config_file, "tenants", "rebalance", "--execute")
        assert rebalance.exit_code == 1 and "synchronous_commit" in rebalance.stderr, (
            rebalance.output)
        assert not audit_file.exists() or _audit(audit_file, "tenant.rebalance") == []
        offline = _json(_run(citus_config_file, "tenants", "move", "mv9", "--to", "w2",
                             "--offline"))  # writes blocked: nothing can be left behind
        assert (offline["to"], offline["outcome"], offline["rows"]) == ("w2", "moved", 20)
    finally:
        _commit_setting(citus_cluster, "w1", [
            "ALTER SYSTEM RESET synchronous_commit",
            "ALTER ROLE postgres IN DATABASE docex RESET synchronous_commit"])


def test_doctor_warns_of_a_worker_that_commits_asynchronously(
        citus_cluster: CitusTestCluster, citus_config_file: Path) -> None:
    def rows() -> dict[str, dict[str, Any]]:
        result = _run(citus_config_file, "doctor")
        return {r["target"].split()[0]: r for r in json_data(result.stdout)["checks"]
                if r["check"] == "citus moves"}

    assert {n: r["status"] for n, r in rows().items()} == {"w1": "PASS", "w2": "PASS"}
    _commit_setting(citus_cluster, "w1", ["ALTER SYSTEM SET synchronous_commit = off"])
    try:
        found = rows()
        assert found["w1"]["status"] == "WARN" and "--offline" in found["w1"]["detail"]
        assert found["w2"]["status"] == "PASS"
    finally:
        _commit_setting(citus_cluster, "w1", ["ALTER SYSTEM RESET synchronous_commit"])
