"""Routed transactions behind a real PgBouncer while things go away: PostgreSQL terminating
the server connections (pg_terminate_backend from a direct connection) and PgBouncer
itself stopping. Every transaction commits in its own tenant's schema or fails with a
one-line error naming the tenant; none lands elsewhere; nothing hangs; the manager
recovers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from conftest import pg_admin_connect
from pgbouncer_support import Bouncer, pooled_mapping, start_bouncer, stop_bouncer
from sqlalchemy import text
from test_pgbouncer import add_probe_tables
from test_pgbouncer_load import run_with_deadline

from docex_ops.config.settings import settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

TENANTS, THREADS = 12, 8
DEADLINE = 120


@pytest.fixture
def bouncer() -> Iterator[Bouncer]:
    started = start_bouncer(default_pool_size=3)
    yield started
    stop_bouncer(started)


@pytest.fixture
def manager(pg_database: str, bouncer: Bouncer, schema_prefix: str
            ) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    raw = pooled_mapping(pg_database, bouncer, schema_prefix, pool_size=1, max_overflow=1)
    yield TenantDatabaseManager(settings_from_mapping(raw, "<test pgbouncer outage>"))
    TenantDatabaseManager.reset()


class Writes:
    """Routed inserts on many threads until told to stop; what committed and what failed."""

    def __init__(self, manager: TenantDatabaseManager, tenants: list[str]) -> None:
        self.manager, self.tenants = manager, tenants
        self.committed: list[tuple[str, int]] = []
        self.failed: list[tuple[str, int, BaseException]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def one(self, tenant: str, n: int) -> bool:
        try:
            with self.manager.tenant_transaction(tenant) as session:
                session.execute(text("INSERT INTO probe VALUES (:t, :n, pg_backend_pid())"),
                                {"t": tenant, "n": n})
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the tests
            with self.lock:
                self.failed.append((tenant, n, exc))
            return False
        with self.lock:
            self.committed.append((tenant, n))
        return True

    def work(self, worker: int) -> None:
        n = worker * 1_000_000
        while not self.stop.is_set():
            n += 1
            self.one(self.tenants[n % len(self.tenants)], n)
            time.sleep(0.001)


def prepare(manager: TenantDatabaseManager, pg_database: str, tag: str) -> dict[str, str]:
    tenants = [f"{tag}{i:02d}" for i in range(TENANTS)]
    for tenant in tenants:
        manager.provision(tenant)
    schemas = {t: manager.backend.location(t) for t in tenants}
    add_probe_tables(pg_database, list(schemas.values()))
    return schemas


def assert_each_row_at_home(batches: list[Writes], pg_database: str,
                            schemas: dict[str, str]) -> None:
    """Every committed write is in its tenant's schema; every row found is one that was
    attempted for that tenant (a failed commit may have landed), none elsewhere."""
    conn = pg_admin_connect(pg_database)
    by_schema: dict[str, set[tuple[str, int]]] = {}
    with conn.cursor() as cur:
        for schema in schemas.values():
            cur.execute(f'SELECT tenant, n FROM "{schema}".probe')
            by_schema[schema] = set(cur.fetchall())
    conn.close()
    committed = {w for writes in batches for w in writes.committed}
    attempted = committed | {(t, n) for writes in batches for t, n, _ in writes.failed}
    for tenant, schema in schemas.items():
        assert all(owner == tenant for owner, _ in by_schema[schema]), schema
        assert by_schema[schema] <= attempted
    for tenant, n in committed:
        assert (tenant, n) in by_schema[schemas[tenant]]


def assert_one_line_errors(writes: Writes) -> None:
    for tenant, _, exc in writes.failed:
        assert isinstance(exc, RuntimeError), repr(exc)
        message = str(exc)
        assert message.startswith(f"tenant {tenant!r}: ") and "\n" not in message, message


def terminate_server_connections(pg_database: str) -> int:
    conn = pg_admin_connect(pg_database)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE datname = %s AND application_name LIKE 'docex:%%'"
                    " AND pid <> pg_backend_pid()", (pg_database,))
        killed = int(cur.fetchone()[0])
    conn.close()
    return killed


def test_server_connections_terminated_mid_run(
        manager: TenantDatabaseManager, pg_database: str) -> None:
    schemas = prepare(manager, pg_database, "k")
    writes = Writes(manager, list(schemas))
    killed = 0

    def chaos() -> None:
        nonlocal killed
        for _ in range(5):
            time.sleep(0.4)
            killed += terminate_server_connections(pg_database)
        time.sleep(0.3)
        writes.stop.set()

    killer = threading.Thread(target=chaos, daemon=True)
    killer.start()
    hung = run_with_deadline(writes.work, THREADS, DEADLINE)
    killer.join(5)
    assert hung == [], f"workers {hung} still running after {DEADLINE}s"
    print(f"terminated {killed} server connections: {len(writes.committed)} committed, "
          f"{len(writes.failed)} failed")
    assert killed > 0 and writes.committed
    assert_one_line_errors(writes)
    assert_each_row_at_home([writes], pg_database, schemas)
    # Recovered: every tenant's next transaction commits (the broken connections were
    # dropped from the pools when they failed).
    after = Writes(manager, list(schemas))
    assert [after.one(t, -i) for i, t in enumerate(schemas)] == [True] * len(schemas), \
        after.failed
    assert_each_row_at_home([writes, after], pg_database, schemas)


def test_pgbouncer_stopped_mid_run(manager: TenantDatabaseManager, pg_database: str,
                                   bouncer: Bouncer) -> None:
    schemas = prepare(manager, pg_database, "s")
    writes = Writes(manager, list(schemas))
    restarted: list[Bouncer] = []

    def chaos() -> None:
        time.sleep(0.8)
        stop_bouncer(bouncer)  # SIGTERM: PgBouncer's immediate shutdown
        time.sleep(1.0)
        writes.stop.set()

    killer = threading.Thread(target=chaos, daemon=True)
    killer.start()
    hung = run_with_deadline(writes.work, THREADS, DEADLINE)
    killer.join(15)
    assert hung == [], f"workers {hung} still running after {DEADLINE}s"
    print(f"pgbouncer stopped: {len(writes.committed)} committed, {len(writes.failed)} "
          f"failed; first error: {writes.failed[0][2] if writes.failed else None}")
    assert writes.committed and writes.failed
    assert_one_line_errors(writes)
    assert_each_row_at_home([writes], pg_database, schemas)
    # PgBouncer back on the same port: a pooled connection that predates the restart
    # fails once (and its pool is dropped); from then on every transaction commits.
    restarted.append(start_bouncer(default_pool_size=3, port=bouncer.port))
    try:
        after = Writes(manager, list(schemas))
        for i, tenant in enumerate(schemas):
            after.one(tenant, -i) or after.one(tenant, -100 - i)
        again = Writes(manager, list(schemas))
        assert [again.one(t, -1000 - i) for i, t in enumerate(schemas)] == \
            [True] * len(schemas), again.failed
        assert_one_line_errors(after)
        assert len(after.committed) == len(schemas)
        assert_each_row_at_home([writes, after, again], pg_database, schemas)
    finally:
        for started in restarted:
            stop_bouncer(started)
