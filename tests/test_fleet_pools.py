"""`pools report` and `pools close-idle` over three real servers: per server, named."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
from click.testing import CliRunner
from conftest import server_connect
from json_support import json_data
from sqlalchemy import text

from docex_ops.cli import main
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.pools import build_report, render_report
from docex_ops.topology.several import SeveralServers


def _fleet(manager: TenantDatabaseManager) -> SeveralServers:
    assert isinstance(manager.topology, SeveralServers)
    return manager.topology


def _pid(conn: Any) -> int:
    return int(conn.connection.dbapi_connection.get_backend_pid())


def _alive(manager: TenantDatabaseManager, server: str, pids: list[int]) -> set[int]:
    conn = server_connect(manager.settings, server)
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
        alive = {int(row[0]) for row in cur.fetchall()}
    conn.close()
    return alive


def _probe(manager: TenantDatabaseManager, server: str, name: str) -> Any:
    pg = manager.settings.server_settings[server]
    conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database,
                            application_name=name)
    conn.autocommit = True
    return conn


def test_report_per_server_with_tenants_attributed(fleet_manager: TenantDatabaseManager
                                                   ) -> None:
    fleet = _fleet(fleet_manager)
    crowd = [f"b{n}" for n in range(4)]   # 4 x (5 + 10) = 60 > what cluster b accepts
    placed = dict.fromkeys(crowd, "b") | {"c1": "c", "home": "main"}
    for tenant_id, server in placed.items():
        fleet.reserve(tenant_id, server)
        fleet_manager.provision(tenant_id)
    held = fleet_manager.get_tenant_engine("b0").connect()
    held.execute(text("SELECT 1"))           # autobegun: idle in transaction on b
    with fleet_manager.get_tenant_engine("c1").connect() as conn:
        conn.execute(text("SELECT 1"))      # checked in: idle in c1's pool
    fleet.servers["c"].create("orphan", "")  # a schema the directory does not name
    tag = f"probe-{uuid.uuid4().hex[:6]}"
    probe = _probe(fleet_manager, "c", tag)
    try:
        report = build_report(fleet_manager)
        table = render_report(report)
        payload = json.loads(render_report(report, "json"))
    finally:
        held.close()
        probe.close()
    assert report.capacity is None and report.server is None
    assert [s.name for s in report.servers] == ["main", "b", "c"]
    sections = {s.name: s for s in report.servers}
    assert sections["b"].usage.max_connections == 60          # the cluster's own setting
    assert sections["main"].usage.max_connections != 60
    assert (sections["b"].capacity.tenants, sections["c"].capacity.tenants,
            sections["main"].capacity.tenants) == (4, 1, 1)
    assert sections["b"].capacity.exceeds and not sections["c"].capacity.exceeds
    assert sections["b"].process["limit"] == fleet_manager.budget_stats("b")["limit"] == 47
    assert sections["b"].usage.tenant_connections == 1
    rows = {(t.server, t.tenant_id): t for t in report.tenants}
    assert (rows["b", "b0"].total, rows["b", "b0"].idle_in_transaction,
            rows["b", "b0"].process_open, rows["b", "b0"].known) == (1, 1, 1, True)
    assert (rows["c", "c1"].idle, rows["c", "c1"].process_open) == (1, 1)
    assert not any(t == "b0" for s, t in rows if s != "b")
    probes = [o for o in report.other_connections if o.application_name == tag]
    assert [o.server for o in probes] == ["c"]
    crowded = [w for w in report.warnings if "worst case" in w]
    assert len(crowded) == 1 and crowded[0].startswith("server 'b': worst case 4 tenants")
    assert any(w.startswith("placement: tenant 'orphan'") for w in report.warnings)
    # The table groups by server: b0 is listed under server b, c1 under server c.
    b_at, c_at = table.index("== server b "), table.index("== server c ")
    assert b_at < table.index("\nb0 ") < c_at < table.index("\nc1 ")
    assert "WARN server 'b': worst case" in table
    assert [s["name"] for s in payload["servers"]] == ["main", "b", "c"]
    assert {(t["server"], t["tenant"]) for t in payload["tenants"]} >= {("b", "b0"),
                                                                           ("c", "c1")}


def test_cli_report_and_close_idle_on_each_server(fleet_manager: TenantDatabaseManager,
                                                  fleet_config_file: Path) -> None:
    fleet = _fleet(fleet_manager)
    for tenant_id, server in (("idle_b", "b"), ("idle_c", "c"), ("fresh_c", "c")):
        fleet.reserve(tenant_id, server)
    idle = {server: fleet_manager.get_tenant_engine(f"idle_{server}").connect()
            for server in ("b", "c")}
    for conn in idle.values():
        conn.execute(text("SELECT 1"))
        conn.commit()                        # checked out, idle on the server
    time.sleep(1.5)
    fresh = fleet_manager.get_tenant_engine("fresh_c").connect()
    fresh.execute(text("SELECT 1"))
    fresh.commit()
    pids = {server: _pid(conn) for server, conn in idle.items()}
    runner = CliRunner()
    try:
        report = runner.invoke(main, ["--config", str(fleet_config_file), "--format", "json",
                                      "pools", "report"])
        assert report.exit_code == 0, report.output
        listed = json_data(report.stdout)
        assert {(t["server"], t["tenant"]) for t in listed["tenants"]} >= {
            ("b", "idle_b"), ("c", "idle_c"), ("c", "fresh_c")}
        hostile = runner.invoke(main, ["--config", str(fleet_config_file), "pools",
                                       "close-idle", "--idle-for", "1s", "--tenant", "x' OR 1=1"])
        assert hostile.exit_code == 2 and "x' OR 1=1" in hostile.output
        assert _alive(fleet_manager, "b", [pids["b"]]) == {pids["b"]}   # refused before SQL
        mine = ["--tenant=idle_b", "--tenant=idle_c", "--tenant=fresh_c"]
        closed = runner.invoke(main, ["--config", str(fleet_config_file), "--format", "json",
                                      "pools", "close-idle", "--idle-for", "1s", *mine])
        assert closed.exit_code == 0, closed.output
        assert f"terminating pid {pids['b']} on server b" in closed.stderr
        done = json_data(closed.stdout)
        assert sorted((t["server"], t["pid"]) for t in done["terminated"]) == \
            sorted(pids.items())
        assert {(r["server"], r["tenant"], r["action"]) for r in done["connections"]} == \
            {("b", "idle_b", "terminated"), ("c", "idle_c", "terminated")}
        deadline = time.monotonic() + 10
        while (_alive(fleet_manager, "b", [pids["b"]]) or
               _alive(fleet_manager, "c", [pids["c"]])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(fleet_manager, "b", [pids["b"]]) == set()
        assert _alive(fleet_manager, "c", [pids["c"]]) == set()
        assert _alive(fleet_manager, "c", [_pid(fresh)]) == {_pid(fresh)}
    finally:
        for conn in idle.values():
            conn.invalidate()
        fresh.close()
