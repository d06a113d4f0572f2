"""Connection budgets per server: a fleet's tenants count against their own server's budget."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import fleet_mapping, server_connect
from sqlalchemy import text

from docex_ops.config.settings import settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.topology.several import SeveralServers


@pytest.fixture
def make_fleet(pg_database: str, pg_clusters: dict[str, Any], schema_prefix: str
               ) -> Iterator[Callable[..., TenantDatabaseManager]]:
    def make(placed: dict[str, str], **database: Any) -> TenantDatabaseManager:
        TenantDatabaseManager.reset()
        settings = settings_from_mapping(
            fleet_mapping(pg_database, pg_clusters, schema_prefix, **database), "<test fleet>")
        manager = TenantDatabaseManager(settings)
        assert isinstance(manager.topology, SeveralServers)
        for tenant_id, server in placed.items():
            manager.topology.reserve(tenant_id, server)
        return manager
    yield make
    TenantDatabaseManager.reset()


def _available(manager: TenantDatabaseManager, server: str) -> int:
    conn = server_connect(manager.settings, server)
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('max_connections')::int - "
                    "current_setting('superuser_reserved_connections')::int - "
                    "coalesce(current_setting('reserved_connections', true), '0')::int")
        available = int(cur.fetchone()[0])
    conn.close()
    return available


def _tenant_connections(manager: TenantDatabaseManager, server: str, prefix: str) -> int:
    """What the server itself sees: docex tenant connections whose tenant starts with prefix."""
    conn = server_connect(manager.settings, server)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                    (f"docex:{prefix}%",))
        seen = int(cur.fetchone()[0])
    conn.close()
    return seen


def test_a_full_server_does_not_block_tenants_of_another(
        make_fleet: Callable[..., TenantDatabaseManager]) -> None:
    manager = make_fleet({"b1": "b", "b2": "b", "b3": "b", "c1": "c"},
                         max_total_connections=2, pool_timeout=0.5)
    held = [manager.get_tenant_engine(t).connect() for t in ("b1", "b2")]
    try:
        for conn in held:
            conn.execute(text("SELECT 1"))
        with pytest.raises(RuntimeError,
                           match=r"tenant 'b3'.*on server 'b'.*all 2 connections"):
            manager.get_tenant_engine("b3").connect()
        # Server b is full; a tenant on c gets its connection at once.
        with manager.get_tenant_engine("c1").connect() as conn:
            assert conn.execute(text("SELECT current_schema()")).scalar() == \
                manager.backend.location("c1")
            assert manager.budget_stats("c")["open"] == 1
        assert _tenant_connections(manager, "b", "b") == 2
        stats = manager.budget_stats()
        assert (stats["limit"], stats["open"], stats["timeouts"]) == (6, 3, 1)
        assert stats["servers"]["b"] | {"peak": 0} == \
            {"limit": 2, "open": 2, "peak": 0, "waiting": 0, "timeouts": 1}
        assert stats["servers"]["c"]["timeouts"] == 0
        assert manager.pool_stats()["c1"]["server"] == "c"
    finally:
        for conn in held:
            conn.close()
    with manager.get_tenant_engine("b3").connect() as conn:  # room again on b
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_idle_engines_make_room_only_on_their_own_server(
        make_fleet: Callable[..., TenantDatabaseManager]) -> None:
    manager = make_fleet({"x": "b", "y": "c", "z": "b"}, max_total_connections=1)
    for tenant_id in ("x", "y"):
        with manager.get_tenant_engine(tenant_id).connect() as conn:
            conn.execute(text("SELECT 1"))   # back in the pool: idle, still open
    # y (server c) had room of its own: x's idle connection on b was left alone.
    assert manager.list_tenant_databases() == ["x", "y"]
    assert manager.pool_stats()["x"]["open"] == 1
    with manager.get_tenant_engine("z").connect() as conn:  # b is full: x makes room
        conn.execute(text("SELECT 1"))
    assert manager.list_tenant_databases() == ["y", "z"]
    assert manager.budget_stats("b")["open"] == 1 and manager.budget_stats("c")["open"] == 1
    with pytest.raises(LookupError, match="no server 'nowhere'"):
        manager.budget_stats("nowhere")


def test_default_budget_derived_from_each_servers_own_limit(
        make_fleet: Callable[..., TenantDatabaseManager]) -> None:
    manager = make_fleet({"on_b": "b", "on_main": "main"})
    assert manager.budget_stats()["limit"] is None      # nothing resolved yet
    manager.get_tenant_engine("on_b")
    manager.get_tenant_engine("on_main")
    assert manager.budget_stats("b")["limit"] == _available(manager, "b") - 10
    assert manager.budget_stats("main")["limit"] == _available(manager, "main") - 10
    assert manager.budget_stats("b")["limit"] != manager.budget_stats("main")["limit"]
    assert manager.budget_stats("c")["limit"] is None   # no engine there yet: not read
    assert manager.budget_stats()["limit"] is None
