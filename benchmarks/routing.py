"""Routing cost and throughput under a connection budget (PostgreSQL).

1. Warm routing: ``get_tenant_session`` + ``SELECT 1`` on a warm tenant against
   the same query through a plain SQLAlchemy engine with the same pool and
   routing (search_path at connect). Target: ratio < 1.2.
2. Throughput: THREADS workers on TENANTS tenants under a budget of BUDGET
   connections, against the same work on BUDGET tenants (everything fits, all
   warm). Target: no error, never over budget (budget peak and
   pg_stat_activity sampled).

Creates its own database on $DOCEX_BENCH_PG (default postgres@127.0.0.1:5432)
and drops it at the end.

    .venv/bin/python benchmarks/routing.py [--tenants 1000] [--budget 40]

``--pooler``: the same through a real PgBouncer in transaction mode that the benchmark
starts itself (see benchmarks/routing_pooler.py): routed against unrouted transactions
through it, and TENANTS tenants x THREADS threads over --server-connections.

    .venv/bin/python benchmarks/routing.py --pooler [--server-connections 20] [--warm-only]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg2
from bench_threads import run_sampled
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from docex_ops.config.settings import Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

HOST = os.environ.get("DOCEX_BENCH_PGHOST", "127.0.0.1")
PORT = int(os.environ.get("DOCEX_BENCH_PGPORT", "5432"))
USER = os.environ.get("DOCEX_BENCH_PGUSER", "postgres")


def admin(database: str = "postgres") -> Any:
    conn = psycopg2.connect(host=HOST, port=PORT, user=USER, dbname=database)
    conn.autocommit = True
    return conn


def settings(database: str, **pool: Any) -> Settings:
    return settings_from_mapping({
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "postgresql", **pool, "postgres": {
            "host": HOST, "port": PORT, "user": USER, "database": database}}},
        "<benchmark>", base_dir=Path.cwd())


def timed(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def warm_routing(database: str, iterations: int, rounds: int) -> None:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings(database))
    manager.provision("warm")
    pg = manager.settings.postgres
    plain = create_engine(pg.url(application_name="plain"), pool_size=5, max_overflow=10,
                          connect_args={"options": "-c search_path=tenant_warm"})

    def routed() -> None:
        with manager.get_tenant_session("warm") as session:
            session.execute(text("SELECT 1")).scalar_one()

    def baseline() -> None:
        with Session(bind=plain) as session:
            session.execute(text("SELECT 1")).scalar_one()

    routed(), baseline()  # warm both pools
    ratios, routed_us, plain_us = [], [], []
    for _ in range(rounds):  # interleaved so drift hits both sides alike
        b = timed(baseline, iterations)
        r = timed(routed, iterations)
        ratios.append(r / b)
        routed_us.append(r * 1e6)
        plain_us.append(b * 1e6)
    # Rounds alternate plain/routed so that load elsewhere on the machine hits
    # both alike; the median of the per-round ratios is the figure.
    ratio = statistics.median(ratios)
    lookup = timed(lambda: manager.get_tenant_engine("warm"), 100_000) * 1e6
    print(f"warm routing: get_tenant_session+SELECT 1 {statistics.median(routed_us):.1f} us, "
          f"plain engine {statistics.median(plain_us):.1f} us, ratio {ratio:.3f} (median of "
          f"{rounds} rounds; target < 1.2: {'OK' if ratio < 1.2 else 'MISSED'}); best rounds "
          f"{min(routed_us):.1f} vs {min(plain_us):.1f} us; manager lookup alone {lookup:.2f} us")
    plain.dispose()
    TenantDatabaseManager.reset()


def provision_all(manager: TenantDatabaseManager, tenants: list[str]) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(manager.provision, tenants))
    return time.perf_counter() - start


class ClosedPids:
    """Backend pids of every connection the client has closed (listened once, process-wide):
    such a backend may linger in pg_stat_activity for a moment while it exits."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.lock = threading.Lock()
        event.listen(Pool, "close", self._on_close)

    def _on_close(self, dbapi_connection: Any, _record: Any) -> None:
        with self.lock:
            self.pids.add(dbapi_connection.get_backend_pid())

    def held(self, seen: set[int]) -> set[int]:
        with self.lock:
            return seen - self.pids


def run_load(manager: TenantDatabaseManager, tenants: list[str], threads: int, ops: int,
             pg: Any, tag: str, closed: ClosedPids) -> tuple[float, int]:
    """ops/s of random single-tenant transactions; and the most tenant connections
    the server showed open (closed-but-exiting backends left out)."""
    held_max = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal held_max
        prefix = f"docex:{tag}"
        while not stop.is_set():
            with pg.cursor() as cur:
                cur.execute("SELECT pid FROM pg_stat_activity WHERE left(application_name, %s)"
                            " = %s", (len(prefix), prefix))
                seen = {r[0] for r in cur.fetchall()}
            held_max = max(held_max, len(closed.held(seen)))
            time.sleep(0.002)

    def work(worker: int) -> None:
        rnd = random.Random(worker)
        for _ in range(ops // threads):
            with manager.tenant_transaction(rnd.choice(tenants)) as session:
                session.execute(text("SELECT count(*) FROM docbasket")).scalar_one()

    elapsed = run_sampled(work, threads, sample, stop)
    return ops / elapsed, held_max


def wait_until_gone(pg: Any, tag: str, seconds: float = 30) -> None:
    prefix = f"docex:{tag}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE left(application_name, %s)"
                        " = %s", (len(prefix), prefix))
            if cur.fetchone()[0] == 0:
                return
        time.sleep(0.01)


def throughput(database: str, tenants: int, budget: int, threads: int, ops: int) -> None:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings(database, max_total_connections=budget))
    tag = "b"
    many = [f"{tag}{i}" for i in range(tenants)]
    seconds = provision_all(manager, many)
    print(f"provisioned {tenants} tenants in {seconds:.1f}s "
          f"({seconds / tenants * 1000:.0f} ms/tenant with 8 workers)")
    pg = admin(database)
    closed = ClosedPids()
    base_rate, base_held = run_load(manager, many[:budget], threads, ops, pg, tag, closed)
    base_stats = manager.budget_stats()
    manager.close_all_connections()
    wait_until_gone(pg, tag)  # closed backends of the baseline exit before the next run
    rate, held = run_load(manager, many, threads, ops, pg, tag, closed)
    stats = manager.budget_stats()
    ok = stats["peak"] <= budget and held <= budget and stats["timeouts"] == 0
    print(f"baseline {budget} tenants: {base_rate:.0f} tx/s (budget peak {base_stats['peak']}, "
          f"server max {base_held})")
    print(f"{tenants} tenants, budget {budget}, {threads} threads: {rate:.0f} tx/s, "
          f"ratio {rate / base_rate:.2f} of baseline; budget peak {stats['peak']}, server "
          f"max {held}, timeouts {stats['timeouts']} -> {'OK' if ok else 'OVER BUDGET/ERROR'}")
    manager.close_all_connections()
    pg.close()
    TenantDatabaseManager.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--ops", type=int, default=8000, help="transactions per load run")
    parser.add_argument("--iterations", type=int, default=2000, help="queries per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--pooler", action="store_true",
                        help="through a PgBouncer in transaction mode (started here)")
    parser.add_argument("--server-connections", type=int, default=20,
                        help="--pooler: PgBouncer's default_pool_size")
    parser.add_argument("--warm-only", action="store_true",
                        help="--pooler: only the warm ratio (no load run)")
    args = parser.parse_args()
    database = f"docex_ops_bench_{uuid.uuid4().hex[:8]}"
    with admin().cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    try:
        if args.pooler:
            import routing_pooler

            routing_pooler.run(database, (HOST, PORT), USER, args, timed, provision_all)
        else:
            warm_routing(database, args.iterations, args.rounds)
            throughput(database, args.tenants, args.budget, args.threads, args.ops)
    finally:
        TenantDatabaseManager.reset()
        with admin().cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
