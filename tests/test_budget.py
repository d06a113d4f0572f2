"""The process-wide connection budget, against real PostgreSQL and SQLite."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.pool import Pool

from docex_ops.config.settings import ConfigError, Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket


def _basket(name: str) -> dict[str, Any]:
    import datetime as dt

    now = dt.datetime(2026, 1, 1)
    return {"id": f"bas_{uuid.uuid4().hex}", "name": name, "storage_config": {},
            "status": "active", "created_at": now, "updated_at": now}


@pytest.fixture
def make_manager(settings_factory: Callable[..., Settings]
                 ) -> Iterator[Callable[..., TenantDatabaseManager]]:
    def make(kind: str, **database: Any) -> TenantDatabaseManager:
        TenantDatabaseManager.reset()
        return TenantDatabaseManager(settings_factory(kind, **database))
    yield make
    TenantDatabaseManager.reset()


def _tenant_backend_pids(pg_conn: Any, tag: str) -> set[int]:
    """Server-side connections of tenants whose id starts with ``tag``."""
    prefix = f"docex:{tag}"
    with pg_conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity "
                    "WHERE left(application_name, %s) = %s", (len(prefix), prefix))
        return {int(row[0]) for row in cur.fetchall()}


def _wait_for_backends(pg_conn: Any, tag: str, expected: int, seconds: float = 10) -> int:
    """The server drops a closed connection's backend asynchronously: poll briefly."""
    deadline = time.monotonic() + seconds
    while True:
        seen = len(_tenant_backend_pids(pg_conn, tag))
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def test_config_key_validated() -> None:
    assert settings_from_mapping({}).pool.max_total_connections is None
    raw = {"database": {"max_total_connections": 40}}
    assert settings_from_mapping(raw).pool.max_total_connections == 40
    for bad in (0, -3, "many", True):
        with pytest.raises(ConfigError, match="database.max_total_connections"):
            settings_from_mapping({"database": {"max_total_connections": bad}})


def test_default_budget_from_server(make_manager: Callable[..., TenantDatabaseManager],
                                    pg_conn: Any) -> None:
    manager = make_manager("postgresql")
    assert manager.budget_stats()["limit"] is None   # resolved with the first engine
    manager.get_tenant_engine("first")
    with pg_conn.cursor() as cur:
        cur.execute("SELECT current_setting('max_connections')::int - "
                    "current_setting('superuser_reserved_connections')::int - "
                    "coalesce(current_setting('reserved_connections', true), '0')::int")
        available = cur.fetchone()[0]
    assert manager.budget_stats()["limit"] == available - 10


def test_sqlite_default_is_unbounded(make_manager: Callable[..., TenantDatabaseManager]) -> None:
    manager = make_manager("sqlite")
    with manager.get_tenant_engine("one").connect() as conn:
        conn.execute(text("SELECT 1"))
        assert manager.budget_stats() | {"peak": 0} == \
            {"limit": None, "open": 1, "peak": 0, "waiting": 0, "timeouts": 0}
    assert manager.pool_stats()["one"]["open"] == 1


def test_idle_engines_make_room(make_manager: Callable[..., TenantDatabaseManager],
                                kind: str) -> None:
    manager = make_manager(kind, max_total_connections=2)
    for tenant in ("a", "b", "c", "d", "a"):
        with manager.tenant_transaction(tenant) as session:
            session.execute(insert(docbasket).values(_basket(uuid.uuid4().hex)))
        assert manager.budget_stats()["open"] <= 2
    stats = manager.budget_stats()
    assert stats["peak"] == 2 and stats["timeouts"] == 0
    # The least recently used idle engines were retired to make room.
    assert manager.list_tenant_databases() == ["d", "a"]
    with manager.get_tenant_session("a") as session:
        assert session.execute(select(func.count()).select_from(docbasket)).scalar_one() == 2


def test_all_busy_waits_then_raises_naming_the_budget(
        make_manager: Callable[..., TenantDatabaseManager], kind: str) -> None:
    manager = make_manager(kind, max_total_connections=2, pool_timeout=0.3)
    with manager.get_tenant_engine("a").connect(), manager.get_tenant_engine("b").connect():
        engine_c = manager.get_tenant_engine("c")
        with pytest.raises(RuntimeError, match=r"tenant 'c'.*max_total_connections"):
            engine_c.connect()
        assert manager.budget_stats()["open"] == 2
    with manager.get_tenant_engine("c").connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert manager.budget_stats()["timeouts"] == 1


def test_waiter_gets_the_slot_of_a_returned_connection(
        make_manager: Callable[..., TenantDatabaseManager], kind: str) -> None:
    manager = make_manager(kind, max_total_connections=2, pool_timeout=30)
    holder_a = manager.get_tenant_engine("a").connect()
    holder_b = manager.get_tenant_engine("b").connect()
    engine_c = manager.get_tenant_engine("c")

    def use_c() -> int:
        with engine_c.connect() as conn:
            return int(conn.execute(text("SELECT 7")).scalar_one())

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(use_c)
        while manager.budget_stats()["waiting"] == 0:
            time.sleep(0.01)
        assert not future.done()
        holder_a.close()        # checked in while someone waits: closed, slot handed over
        assert future.result(timeout=30) == 7
    holder_b.close()
    assert manager.budget_stats()["peak"] == 2
    assert manager.pool_stats()["a"]["open"] == 0


def test_retired_engine_closes_connection_on_checkin(
        make_manager: Callable[..., TenantDatabaseManager], kind: str) -> None:
    manager = make_manager(kind, max_total_connections=5)
    engine = manager.get_tenant_engine("gone")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        assert manager.close_tenant_connection("gone") is True
        assert manager.budget_stats()["open"] == 1       # in use: not broken
    assert manager.budget_stats()["open"] == 0           # closed on check-in
    with engine.connect() as conn:                        # a stale reference still works
        conn.execute(text("SELECT 1"))
    assert manager.budget_stats()["open"] == 0


def test_sixteen_threads_three_hundred_tenants_never_over_budget(
        make_manager: Callable[..., TenantDatabaseManager], pg_conn: Any) -> None:
    budget = 40
    manager = make_manager("postgresql", max_total_connections=budget, pool_timeout=60)
    tag = f"s{uuid.uuid4().hex[:6]}_"
    tenants = [f"{tag}{i}" for i in range(300)]
    # A backend the client has closed lingers in pg_stat_activity for a moment
    # while it exits; the sampler leaves out pids the client had closed.
    closed: set[int] = set()
    closed_lock = threading.Lock()
    held_max = 0
    stop = threading.Event()

    def on_close(dbapi_connection: Any, _record: Any) -> None:
        with closed_lock:
            closed.add(dbapi_connection.get_backend_pid())

    def sample() -> None:
        nonlocal held_max
        while not stop.is_set():
            seen = _tenant_backend_pids(pg_conn, tag)
            with closed_lock:   # closed by the time the snapshot was read: exiting
                held = seen - closed
            held_max = max(held_max, len(held))

    def work(worker: int) -> int:
        rnd = random.Random(worker)
        done = 0
        for _ in range(60):
            first, second = rnd.sample(tenants, 2)
            action = rnd.randrange(3)
            if action == 0:
                with manager.tenant_transaction(first) as session:
                    session.execute(insert(docbasket).values(_basket(uuid.uuid4().hex)))
            elif action == 1:
                with manager.get_tenant_session(first) as session:
                    session.execute(select(func.count()).select_from(docbasket)).scalar_one()
            else:  # two tenants' connections held at once
                with ExitStack() as stack:
                    for tenant in (first, second):
                        conn = stack.enter_context(manager.get_tenant_engine(tenant).connect())
                        conn.execute(text("SELECT 1"))
            done += 1
        return done

    event.listen(Pool, "close", on_close)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            assert sum(pool.map(work, range(16))) == 16 * 60
    finally:
        stop.set()
        sampler.join()
        event.remove(Pool, "close", on_close)
    stats = manager.budget_stats()
    assert stats["peak"] <= budget and stats["timeouts"] == 0
    assert 0 < held_max <= budget
    manager.close_all_connections()
    assert manager.budget_stats()["open"] == 0
    assert _wait_for_backends(pg_conn, tag, 0) == 0
