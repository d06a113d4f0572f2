"""Tenants on three real PostgreSQL servers: placement, directory, routing, reconciliation."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg2
import pytest
from conftest import server_connect
from sqlalchemy import insert

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket
from docex_ops.tenants.lifecycle import provision_tenants
from docex_ops.topology.several import PlacementError, SeveralServers

SERVERS = ("main", "b", "c")


def _fleet(manager: TenantDatabaseManager) -> SeveralServers:
    assert isinstance(manager.topology, SeveralServers)
    return manager.topology


def _schemas_on(manager: TenantDatabaseManager, server: str) -> set[str]:
    conn = server_connect(manager.settings, server)
    prefix = manager.settings.postgres.schema_template.split("{", 1)[0]
    with conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (prefix + "%",))
        found = {r[0] for r in cur.fetchall()}
    conn.close()
    return found


def _directory(manager: TenantDatabaseManager) -> dict[str, tuple[str, str]]:
    return {t: (p.server, p.state) for t, p in _fleet(manager).directory.all().items()}


def _basket(name: str) -> dict[str, Any]:
    now = dt.datetime(2026, 1, 1)
    return {"id": f"bas_{uuid.uuid4().hex}", "name": name, "storage_config": {},
            "status": "active", "created_at": now, "updated_at": now}


def test_new_tenants_go_to_the_least_loaded_server(fleet_manager: TenantDatabaseManager
                                                   ) -> None:
    fleet = _fleet(fleet_manager)
    fleet.reserve("pinned", "c")
    results = provision_tenants(fleet_manager, ["pinned", "t1", "t2", "t3", "t4", "t5"])
    assert all(r.ok and r.created for r in results)
    directory = _directory(fleet_manager)
    assert directory["pinned"] == ("c", "active")
    per_server = {s: sorted(t for t, (srv, _) in directory.items() if srv == s)
                  for s in SERVERS}
    assert sorted(len(v) for v in per_server.values()) == [2, 2, 2]
    for server in SERVERS:  # each schema exists on its own server and nowhere else
        location = {fleet.location(t) for t in per_server[server]}
        assert _schemas_on(fleet_manager, server) == location
    with pytest.raises(PlacementError, match="already on server 'c'.*tenants move"):
        fleet.reserve("pinned", "b")


def test_rows_land_on_the_tenants_server_and_schema(fleet_manager: TenantDatabaseManager
                                                    ) -> None:
    fleet = _fleet(fleet_manager)
    tenants = {"north": "b", "south": "c", "home": "main"}
    for tenant_id, server in tenants.items():
        fleet.reserve(tenant_id, server)

    def write(job: tuple[str, int]) -> str:
        tenant_id, n = job
        with fleet_manager.tenant_transaction(tenant_id) as session:
            session.execute(insert(docbasket).values(_basket(f"{tenant_id}-{n}")))
        return tenant_id

    jobs = [(t, n) for n in range(10) for t in tenants]
    with ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(write, jobs)) == sorted(t for t, _ in jobs)
    for server in SERVERS:
        conn = server_connect(fleet_manager.settings, server)
        with conn.cursor() as cur:
            for tenant_id, home in tenants.items():
                schema = fleet.location(tenant_id)
                cur.execute("SELECT to_regclass(%s)", (f"{schema}.docbasket",))
                if cur.fetchone()[0] is None:
                    assert server != home
                    continue
                assert server == home, f"{tenant_id} has a schema on {server}, not only {home}"
                cur.execute(f'SELECT name FROM "{schema}".docbasket ORDER BY name')
                names = [r[0] for r in cur.fetchall()]
                assert names == sorted(f"{tenant_id}-{n}" for n in range(10))
        conn.close()
    stats = fleet_manager.list_tenant_databases()
    assert sorted(stats) == sorted(tenants)


def test_directory_row_and_schema_commit_together(fleet_manager: TenantDatabaseManager
                                                  ) -> None:
    fleet = _fleet(fleet_manager)
    fleet.reserve("broken", "main")  # the directory server: one transaction
    with pytest.raises(psycopg2.Error, match="no_such_function"):
        fleet.create("broken", "CREATE TABLE x (id int); SELECT no_such_function();")
    placed = fleet.placement("broken")
    assert placed is not None and placed.state == "provisioning"
    assert fleet.location("broken") not in _schemas_on(fleet_manager, "main")
    assert fleet_manager.provision("broken") is True
    assert _directory(fleet_manager)["broken"] == ("main", "active")


def test_interrupted_provision_on_another_server_is_finished_by_a_rerun(
        fleet_manager: TenantDatabaseManager) -> None:
    fleet = _fleet(fleet_manager)
    fleet.reserve("halfway", "b")
    fleet.servers["b"].create("halfway", "")  # the crash: schema made, row not yet active
    view = fleet.reconcile()
    assert [p.tenant_id for p in view.problems] == ["halfway"]
    assert "provisioning on 'b' did not finish" in view.problems[0].message
    assert "halfway" not in [t.tenant_id for t in view.tenants]
    with pytest.raises(PlacementError, match="rerun `docex-ops tenants provision halfway`"):
        fleet.server_of("halfway")
    fleet_manager.provision("halfway")
    assert _directory(fleet_manager)["halfway"] == ("b", "active")
    assert [t.server for t in fleet.discover().tenants if t.tenant_id == "halfway"] == ["b"]


def test_stray_and_unrecorded_copies_are_reported_never_picked(
        fleet_manager: TenantDatabaseManager) -> None:
    fleet = _fleet(fleet_manager)
    provision_tenants(fleet_manager, ["good", "twice"])
    home = fleet.server_of("twice")
    other = next(s for s in SERVERS if s != home)
    fleet.servers[other].create("twice", "")          # a second copy somewhere else
    fleet.servers["c"].create("orphan", "")           # a schema the directory never heard of
    view = fleet.reconcile()
    problems = {p.tenant_id: p for p in view.problems}
    assert sorted(problems) == ["orphan", "twice"]
    assert problems["twice"].servers == tuple(sorted((home, other)))
    assert "does not name it" in problems["orphan"].message
    assert [t.tenant_id for t in view.tenants] == ["good"]
    with pytest.raises(RuntimeError, match="tenants place orphan --server c"):
        fleet_manager.get_tenant_engine("orphan")  # first access never picks a copy
    fleet.place("orphan", "c")
    assert fleet.server_of("orphan") == "c"
    with pytest.raises(PlacementError, match="already recorded"):
        fleet.place("orphan", "b")


def test_drop_on_each_kind_of_server_and_an_interrupted_drop(
        fleet_manager: TenantDatabaseManager) -> None:
    fleet = _fleet(fleet_manager)
    for tenant_id, server in (("here", "main"), ("there", "b"), ("stuck", "c")):
        fleet.reserve(tenant_id, server)
        fleet_manager.provision(tenant_id)
    fleet.drop("here")
    fleet.drop("there")
    assert fleet.location("here") not in _schemas_on(fleet_manager, "main")
    assert fleet.location("there") not in _schemas_on(fleet_manager, "b")
    with fleet.directory.transaction() as conn:  # the crash: marked, schema not dropped yet
        fleet.directory.set_state(conn, "stuck", "dropping")
    assert "dropping on 'c' did not finish" in fleet.reconcile().problems[0].message
    fleet.drop("stuck")
    assert _directory(fleet_manager) == {}
    assert not any(_schemas_on(fleet_manager, s) for s in SERVERS)


def test_concurrent_first_access_places_a_tenant_once(fleet_manager: TenantDatabaseManager
                                                      ) -> None:
    barrier = threading.Barrier(6)

    def first_access(_: int) -> str:
        barrier.wait()
        fleet_manager.get_tenant_engine("racer")
        return _fleet(fleet_manager).server_of("racer")

    with ThreadPoolExecutor(6) as pool:
        servers = set(pool.map(first_access, range(6)))
    assert len(servers) == 1
    holders = [s for s in SERVERS
               if _fleet(fleet_manager).location("racer") in _schemas_on(fleet_manager, s)]
    assert holders == list(servers)
