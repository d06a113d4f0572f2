"""Tenant routing behind a real PgBouncer in transaction mode (2 server connections)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg2
import pytest
from conftest import PG_USER, pg_admin_connect
from pgbouncer_support import Bouncer, pooled_mapping, start_bouncer, stop_bouncer
from sqlalchemy import text

from docex_ops.config.settings import ConfigError, Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.runner_lock import runner_lock

TENANTS, THREADS, WRITES = 50, 16, 400


@pytest.fixture(scope="module")
def bouncer() -> Iterator[Bouncer]:
    started = start_bouncer()
    yield started
    stop_bouncer(started)


@pytest.fixture
def pooled(pg_database: str, bouncer: Bouncer, schema_prefix: str) -> Settings:
    return settings_from_mapping(pooled_mapping(pg_database, bouncer, schema_prefix,
                                                pool_size=2, max_overflow=0),
                                 "<test pgbouncer>")


@pytest.fixture
def pooled_manager(pooled: Settings) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    yield TenantDatabaseManager(pooled)
    TenantDatabaseManager.reset()


def add_probe_tables(pg_database: str, schemas: list[str]) -> None:
    conn = pg_admin_connect(pg_database)
    with conn.cursor() as cur:
        for schema in schemas:
            cur.execute(f'CREATE TABLE "{schema}".probe (tenant text NOT NULL, '
                        "n int NOT NULL, backend int NOT NULL)")
    conn.close()


def probe_rows(pg_database: str, schemas: list[str]) -> dict[str, list[tuple[str, int]]]:
    conn = pg_admin_connect(pg_database)
    rows = {}
    with conn.cursor() as cur:
        for schema in schemas:
            cur.execute(f'SELECT tenant, backend FROM "{schema}".probe')
            rows[schema] = cur.fetchall()
    conn.close()
    return rows


def test_config_keeps_direct_and_application_endpoints(pooled: Settings,
                                                       bouncer: Bouncer) -> None:
    assert pooled.pooler.mode == "pgbouncer_transaction"
    assert pooled.pooler.application is not None
    assert pooled.pooler.application.port == bouncer.port
    assert pooled.postgres.port != bouncer.port  # operators connect to PostgreSQL itself


def test_statement_mode_is_refused(pg_database: str, bouncer: Bouncer) -> None:
    raw = pooled_mapping(pg_database, bouncer, "t_", mode="pgbouncer_statement")
    with pytest.raises(ConfigError, match="statement mode is not supported"):
        settings_from_mapping(raw)


def test_a_pgbouncer_in_statement_mode_is_refused_at_start_up(
        pg_database: str, schema_prefix: str) -> None:
    other = start_bouncer(pool_mode="statement")
    try:
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(settings_from_mapping(
            pooled_mapping(pg_database, other, schema_prefix)))
        with pytest.raises(RuntimeError) as refused:
            manager.get_tenant_engine("stmt")
        message = str(refused.value)
        assert "\n" not in message
        assert f"{other.host}:{other.port}" in message and "pool_mode = statement" in message
        assert "pool_mode = transaction" in message  # what to do instead
    finally:
        TenantDatabaseManager.reset()
        stop_bouncer(other)


def test_a_pooler_with_several_servers_is_refused(pg_database: str, bouncer: Bouncer) -> None:
    raw = pooled_mapping(pg_database, bouncer, "t_")
    raw["database"]["postgres"]["servers"] = {
        "a": {"host": "127.0.0.1", "port": 5432, "database": pg_database},
        "b": {"host": "127.0.0.1", "port": 5433, "database": pg_database}}
    raw["database"]["postgres"]["directory_server"] = "a"
    with pytest.raises(ConfigError, match="not supported with database.postgres.servers"):
        settings_from_mapping(raw)


def test_without_direct_the_pooler_endpoint_is_the_only_one(pg_database: str,
                                                            bouncer: Bouncer) -> None:
    raw = pooled_mapping(pg_database, bouncer, "t_")
    del raw["database"]["postgres"]["direct"]
    settings = settings_from_mapping(raw)
    assert settings.pooler.application is None
    assert settings.postgres.port == bouncer.port


def test_16_threads_50_tenants_over_2_server_connections_none_misrouted(
        pooled_manager: TenantDatabaseManager, pg_database: str, bouncer: Bouncer) -> None:
    tenants = [f"b{i:02d}" for i in range(TENANTS)]
    for tenant in tenants:
        pooled_manager.provision(tenant)
    schemas = {t: pooled_manager.backend.location(t) for t in tenants}
    add_probe_tables(pg_database, list(schemas.values()))
    failures: list[BaseException] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        tenant = tenants[(n * 7) % TENANTS]
        try:
            with pooled_manager.tenant_transaction(tenant) as session:
                session.execute(text("INSERT INTO probe VALUES (:t, :n, pg_backend_pid())"),
                                {"t": tenant, "n": n})
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            with lock:
                failures.append(exc)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(write, range(WRITES)))
    assert failures == []
    rows = probe_rows(pg_database, list(schemas.values()))
    total = sum(len(r) for r in rows.values())
    misrouted = sum(1 for t, s in schemas.items() for owner, _ in rows[s] if owner != t)
    print(f"pgbouncer routing: {misrouted} misrouted of {total} rows, "
          f"{TENANTS} tenants, {THREADS} threads")
    assert total == WRITES
    assert misrouted == 0
    backends = {b for r in rows.values() for _, b in r}
    assert len(backends) <= 2  # PgBouncer's default_pool_size: tenants shared them
    tenants_per_backend = max(sum(1 for r in rows.values() if any(b == pid for _, b in r))
                              for pid in backends)
    assert tenants_per_backend > 1


def test_session_search_path_leaked_by_another_client_never_misroutes(
        pooled_manager: TenantDatabaseManager, pg_database: str, bouncer: Bouncer) -> None:
    pooled_manager.provision("victim")
    pooled_manager.provision("intruder")
    victim, intruder = (pooled_manager.backend.location(t) for t in ("victim", "intruder"))
    add_probe_tables(pg_database, [victim, intruder])
    # A client of the same PgBouncer sets search_path at session level: in transaction
    # mode it stays on the server connection the next client gets.
    rogue = psycopg2.connect(host=bouncer.host, port=bouncer.port, user=PG_USER,
                             dbname=pg_database)
    rogue.autocommit = True
    for n in range(20):
        with rogue.cursor() as cur:
            cur.execute(f'SET search_path TO "{intruder}"')
        with pooled_manager.tenant_transaction("victim") as session:
            session.execute(text("INSERT INTO probe VALUES ('victim', :n, 0)"), {"n": n})
    rogue.close()
    rows = probe_rows(pg_database, [victim, intruder])
    assert len(rows[victim]) == 20
    assert rows[intruder] == []


def test_a_tenant_schema_gone_behind_the_managers_back_fails_closed(
        pooled_manager: TenantDatabaseManager, pg_database: str) -> None:
    pooled_manager.provision("gone")
    schema = pooled_manager.backend.location("gone")
    add_probe_tables(pg_database, [schema])
    with pooled_manager.tenant_transaction("gone") as session:  # warm: pooled connections
        session.execute(text("INSERT INTO probe VALUES ('gone', 1, 0)"))
    conn = pg_admin_connect(pg_database)
    with conn.cursor() as cur:
        cur.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_away"')
        cur.execute("CREATE TABLE IF NOT EXISTS public.probe (tenant text, n int, backend int)")
    try:
        with pytest.raises(RuntimeError, match="tenant 'gone'.*not .*rolled back"), \
                pooled_manager.tenant_transaction("gone") as session:
            session.execute(text("INSERT INTO probe VALUES ('gone', 2, 0)"))
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM public.probe WHERE tenant = 'gone'")
            assert cur.fetchone() == (0,)
        assert "gone" not in pooled_manager.list_tenant_databases()  # routes again next time
    finally:
        with conn.cursor() as cur:
            cur.execute(f'ALTER SCHEMA "{schema}_away" RENAME TO "{schema}"')
            cur.execute("DROP TABLE IF EXISTS public.probe")
        conn.close()


def test_no_tenant_sql_outside_a_routed_transaction(
        pooled_manager: TenantDatabaseManager) -> None:
    pooled_manager.provision("raw")
    schema = pooled_manager.backend.location("raw")
    engine = pooled_manager.get_tenant_engine("raw")
    raw: Any = engine.raw_connection()
    try:
        with raw.cursor() as cur:  # plain DBAPI: routed all the same
            cur.execute("SELECT current_schema()")
            assert cur.fetchone() == (schema,)
        raw.rollback()
        raw.driver_connection.autocommit = True
        with pytest.raises(RuntimeError, match="autocommit is refused"), raw.cursor() as cur:
            cur.execute("SELECT 1")
        raw.driver_connection.autocommit = False
        with pytest.raises(RuntimeError, match="WITH HOLD"), \
                raw.cursor("held", withhold=True) as cur:
            cur.execute("SELECT 1")
    finally:
        raw.rollback()
        raw.close()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(RuntimeError, match="autocommit is refused"):
            conn.execute(text("SELECT 1"))


def test_operator_paths_go_direct(pooled_manager: TenantDatabaseManager,
                                  bouncer: Bouncer) -> None:
    with runner_lock(pooled_manager.backend, wait=False):  # session advisory lock: direct
        pass
    with pooled_manager.backend.admin_engine.connect() as conn:
        port = conn.execute(text("SELECT inet_server_port()")).scalar()
    assert port != bouncer.port
    assert port == pooled_manager.settings.postgres.port


@pytest.mark.parametrize("extra, word", [({}, "refuses"),
                                         ({"ignore_startup_parameters": "options"},
                                          "ignores")])
def test_start_up_detects_a_pooler_that_drops_routing(
        pg_database: str, schema_prefix: str, extra: dict[str, str], word: str) -> None:
    other = start_bouncer(**extra)
    try:
        raw = pooled_mapping(pg_database, other, schema_prefix, mode="none")
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(settings_from_mapping(raw))
        with pytest.raises(RuntimeError, match=f"{word}.*pooler: pgbouncer_transaction"):
            manager.get_tenant_engine("startup")
    finally:
        TenantDatabaseManager.reset()
        stop_bouncer(other)


def test_connect_time_routing_fails_closed_when_the_route_is_dropped(
        pg_database: str, schema_prefix: str) -> None:
    other = start_bouncer(ignore_startup_parameters="options")
    try:
        raw = pooled_mapping(pg_database, other, schema_prefix, mode="none")
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(settings_from_mapping(raw))
        manager.provision("dropped")
        manager.backend._routing_probed = True  # type: ignore[attr-defined]  # past start-up
        with pytest.raises(RuntimeError, match="tenant 'dropped'.*schema public"), \
                manager.tenant_transaction("dropped") as session:
            session.execute(text("SELECT 1"))
    finally:
        TenantDatabaseManager.reset()
        stop_bouncer(other)
