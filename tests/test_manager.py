"""TenantDatabaseManager against real PostgreSQL and SQLite."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket
from docex_ops.tenancy import UserContext
from docex_ops.tenants.lifecycle import verify_tenant


def _basket(name: str) -> dict[str, Any]:
    import datetime as dt

    now = dt.datetime(2026, 1, 1)
    return {"id": f"bas_{uuid.uuid4().hex}", "name": name, "storage_config": {},
            "status": "active", "created_at": now, "updated_at": now}


def test_singleton_and_reconfiguration_refused(manager: TenantDatabaseManager,
                                               settings_factory: Callable[..., Settings]) -> None:
    assert TenantDatabaseManager() is manager
    assert TenantDatabaseManager(manager.settings) is manager
    other = settings_factory("sqlite", pool_size=2)
    with pytest.raises(RuntimeError, match="already configured"):
        TenantDatabaseManager(other)


def test_missing_tenant_id_raises_value_error(manager: TenantDatabaseManager) -> None:
    for bad in (None, "", UserContext(user_id="alice")):
        with pytest.raises(ValueError, match="tenant_id is required"):
            manager.get_tenant_engine(bad)


def test_twenty_threads_create_one_engine_and_one_tenant(manager: TenantDatabaseManager) -> None:
    barrier = threading.Barrier(20)

    def hit(_: int) -> int:
        barrier.wait()
        return id(manager.get_tenant_engine("racer"))

    with ThreadPoolExecutor(20) as pool:
        engines = set(pool.map(hit, range(20)))
    assert len(engines) == 1
    assert [t.tenant_id for t in manager.backend.discover()] == ["racer"]
    assert manager.list_tenant_databases() == ["racer"]


def test_rows_land_in_their_own_tenant(manager: TenantDatabaseManager) -> None:
    tenants = ["left", "right"]

    def write(worker: int) -> None:
        for i in range(10):
            tenant = tenants[(worker + i) % 2]
            with manager.tenant_transaction(UserContext("u", tenant)) as session:
                session.execute(insert(docbasket).values(_basket(f"{tenant}-{worker}-{i}")))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(write, range(6)))
    for tenant in tenants:
        # Read through an operator connection, independent of the tenant engines.
        with manager.backend.tenant_connection(tenant) as conn:
            names = conn.execute(select(docbasket.c.name)).scalars().all()
        assert len(names) == 30
        assert all(name.startswith(tenant + "-") for name in names)


def test_transaction_rolls_back_on_error(manager: TenantDatabaseManager) -> None:
    with pytest.raises(ZeroDivisionError), manager.tenant_transaction("rb") as session:
        session.execute(insert(docbasket).values(_basket("gone")))
        raise ZeroDivisionError
    with manager.get_tenant_session("rb") as session:
        assert session.execute(select(func.count()).select_from(docbasket)).scalar_one() == 0


def test_database_error_becomes_runtime_error(manager: TenantDatabaseManager) -> None:
    row = _basket("dup")
    with manager.tenant_transaction("dup") as session:
        session.execute(insert(docbasket).values(row))
    with pytest.raises(RuntimeError, match="tenant 'dup'"), \
            manager.tenant_transaction("dup") as session:
        session.execute(insert(docbasket).values(row))


def test_pool_stats_and_lru_bound(settings_factory: Callable[..., Settings], kind: str) -> None:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_factory(kind, max_tenant_engines=2, pool_size=3))
    try:
        engine = manager.get_tenant_engine("s1")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            stats = manager.pool_stats()["s1"]
            assert (stats["pool_size"], stats["checked_out"]) == (3, 1)
        assert manager.pool_stats()["s1"]["checked_out"] == 0
        assert manager.pool_stats()["s1"]["idle"] == 1
        manager.get_tenant_engine("s2")
        manager.get_tenant_engine("s1")   # s1 is now the most recently used
        manager.get_tenant_engine("s3")
        assert sorted(manager.list_tenant_databases()) == ["s1", "s3"]
        assert manager.close_tenant_connection("s1") is True
        assert manager.close_tenant_connection("s1") is False
        assert manager.close_idle(0) == ["s3"]
        manager.get_tenant_engine("s2")
        manager.close_all_connections()
        assert manager.list_tenant_databases() == []
    finally:
        TenantDatabaseManager.reset()


def test_routing_off_refuses_missing_tenant(settings_factory: Callable[..., Settings],
                                            kind: str) -> None:
    from dataclasses import replace

    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(replace(settings_factory(kind), tenant_database_routing=False))
    try:
        with pytest.raises(RuntimeError, match="tenants provision ghost"):
            manager.get_tenant_engine("ghost")
        assert manager.provision("ghost") is True
        assert verify_tenant(manager, "ghost")
    finally:
        TenantDatabaseManager.reset()


@pytest.mark.parametrize("kind", ["sqlite"])
def test_sqlite_foreign_keys_on(manager: TenantDatabaseManager) -> None:
    with manager.get_tenant_engine("fk").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("kind", ["postgresql"])
def test_postgres_connections_named_and_routed(manager: TenantDatabaseManager,
                                               pg_conn: Any) -> None:
    with manager.get_tenant_engine("named").connect() as conn:
        assert conn.execute(text("SELECT current_schema()")).scalar() == \
            manager.backend.location("named")
        assert conn.execute(text("SELECT current_schemas(false)")).scalar() == \
            [manager.backend.location("named")]
        with pg_conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                        ("docex:named",))
            assert cur.fetchone()[0] == 1


def test_unreachable_server_is_runtime_error(settings_factory: Callable[..., Settings]) -> None:
    from dataclasses import replace

    settings = settings_factory("postgresql")
    settings = replace(settings, postgres=replace(settings.postgres, port=1))
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    try:
        with pytest.raises(RuntimeError, match="tenant 'offline'.*failed"):
            manager.get_tenant_engine("offline")
    finally:
        TenantDatabaseManager.reset()


def test_create_schema_permission_error_names_grant(settings_factory: Callable[..., Settings],
                                                    pg_conn: Any) -> None:
    from dataclasses import replace

    role = f"docex_ops_test_noperm_{uuid.uuid4().hex[:6]}"
    with pg_conn.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')
    settings = settings_factory("postgresql")
    settings = replace(settings, postgres=replace(settings.postgres, user=role))
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    try:
        with pytest.raises(RuntimeError, match=r"GRANT CREATE ON DATABASE .* TO \"" + role):
            manager.get_tenant_engine("denied")
    finally:
        TenantDatabaseManager.reset()
        with pg_conn.cursor() as cur:
            cur.execute(f'DROP ROLE "{role}"')


def test_provision_fills_an_empty_tenant_and_leaves_a_full_one(
        manager: TenantDatabaseManager) -> None:
    """An empty schema/file (left by a crash, or made by a DBA) is filled; one with tables
    is left alone."""
    backend = manager.backend
    assert backend.create("blank", "") is True  # schema / file with nothing in it
    assert manager.provision("blank") is True
    assert backend.read_revisions(["blank"]) == {"blank": "0003_object_paths"}
    assert len(backend.catalog("blank")) == 11
    assert manager.provision("blank") is False


@pytest.mark.parametrize("kind", ["sqlite"])
def test_sqlite_failed_provisioning_leaves_no_file(manager: TenantDatabaseManager) -> None:
    path = manager.backend.location("broken")
    with pytest.raises(Exception, match="syntax"):
        manager.backend.create("broken", "CREATE TABLE ok (id INTEGER);\nTHIS IS NOT SQL;\n")
    assert not Path(path).exists()
