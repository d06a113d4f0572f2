"""Many tenants through few server connections behind a real PgBouncer (transaction mode):
200 tenants x 16 threads over 4 server connections finish (a timeout fails the test
instead of hanging it), with no error, every row in its own tenant's schema, and no
tenant connection holding a server connection between its transactions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import pg_admin_connect
from pgbouncer_support import Bouncer, pooled_mapping, start_bouncer, stop_bouncer
from sqlalchemy import text
from test_pgbouncer import add_probe_tables, probe_rows

from docex_ops.config.settings import settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

TENANTS, THREADS, SERVER_CONNECTIONS, PER_THREAD = 200, 16, 4, 100
# Seconds the whole load may take on a loaded 2-core machine (it needs about 10).
DEADLINE = 180


@pytest.fixture(scope="module")
def bouncer() -> Iterator[Bouncer]:
    started = start_bouncer(default_pool_size=SERVER_CONNECTIONS)
    yield started
    stop_bouncer(started)


@pytest.fixture
def manager(pg_database: str, bouncer: Bouncer, schema_prefix: str
            ) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    # A budget below the tenant count: engines are retired and reconnect during the run.
    raw = pooled_mapping(pg_database, bouncer, schema_prefix, pool_size=1, max_overflow=1,
                         max_total_connections=64)
    yield TenantDatabaseManager(settings_from_mapping(raw, "<test pgbouncer load>"))
    TenantDatabaseManager.reset()


def server_links(bouncer: Bouncer, database: str) -> int:
    """PgBouncer's server connections linked to a client right now."""
    return sum(p["sv_active"] for p in bouncer.show("POOLS") if p["database"] == database)


def idle_in_transaction(database: str) -> list[str]:
    conn = pg_admin_connect(database)
    with conn.cursor() as cur:
        cur.execute("SELECT query FROM pg_stat_activity WHERE datname = %s AND state LIKE "
                    "'idle in transaction%%' AND pid <> pg_backend_pid()", (database,))
        found = [r[0] for r in cur.fetchall()]
    conn.close()
    return found


def run_with_deadline(work: Any, threads: int, seconds: float) -> list[int]:
    """``work(worker)`` on ``threads`` daemon threads; the workers still running after
    ``seconds`` (a hang shows up as a failed assertion, not a stuck suite)."""
    started = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(threads)]
    deadline = time.monotonic() + seconds
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return [n for n, thread in enumerate(started) if thread.is_alive()]


def test_first_connect_leaves_no_server_connection_in_a_transaction(
        manager: TenantDatabaseManager, bouncer: Bouncer, pg_database: str) -> None:
    manager.provision("fresh")
    engine = manager.get_tenant_engine("fresh")
    raw: Any = engine.raw_connection()  # a new connection: SQLAlchemy's first-connect queries
    try:
        assert raw.driver_connection.get_transaction_status() == 0  # idle, none open
        assert server_links(bouncer, pg_database) == 0
        assert idle_in_transaction(pg_database) == []
    finally:
        raw.close()


def test_200_tenants_16_threads_over_4_server_connections(
        manager: TenantDatabaseManager, bouncer: Bouncer, pg_database: str) -> None:
    tenants = [f"l{i:03d}" for i in range(TENANTS)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(manager.provision, tenants))
    schemas = {t: manager.backend.location(t) for t in tenants}
    add_probe_tables(pg_database, list(schemas.values()))
    errors: list[str] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for n in range(PER_THREAD):
            tenant = tenants[(worker * 31 + n * 7) % TENANTS]
            try:
                with manager.tenant_transaction(tenant) as session:
                    session.execute(text("INSERT INTO probe VALUES (:t, :n, pg_backend_pid())"),
                                    {"t": tenant, "n": worker * PER_THREAD + n})
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                with lock:
                    errors.append(f"{tenant}: {str(exc).splitlines()[0]}")

    hung = run_with_deadline(work, THREADS, DEADLINE)
    assert hung == [], f"workers {hung} still running after {DEADLINE}s: the load hangs"
    assert errors == []
    rows = probe_rows(pg_database, list(schemas.values()))
    total = sum(len(r) for r in rows.values())
    misrouted = sum(1 for t, s in schemas.items() for owner, _ in rows[s] if owner != t)
    print(f"pgbouncer load: {misrouted} misrouted of {total} rows, {TENANTS} tenants, "
          f"{THREADS} threads, {SERVER_CONNECTIONS} server connections")
    assert total == THREADS * PER_THREAD
    assert misrouted == 0
    assert len({b for r in rows.values() for _, b in r}) <= SERVER_CONNECTIONS
    # Between transactions the tenant pools keep their client connections, and none of
    # them holds a server connection.
    assert sum(s["open"] for s in manager.pool_stats().values()) > 0
    assert server_links(bouncer, pg_database) == 0
    assert idle_in_transaction(pg_database) == []
