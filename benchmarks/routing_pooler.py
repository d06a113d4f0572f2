"""``routing.py --pooler``: routing through a real PgBouncer in transaction mode.

1. Warm routed transactions (``get_tenant_session`` + ``SELECT 1``: SET LOCAL and its
   check ride in the statement's round trip) against the same transactions through the
   same PgBouncer without routing. Target: ratio <= 1.2.
2. TENANTS tenants x THREADS threads through SERVER_CONNECTIONS server connections
   (default_pool_size): throughput, zero errors, zero misrouted, PgBouncer's server
   connections never above the pool size.
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench_threads import run_sampled
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from docex_ops.config.settings import Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pgbouncer_support import Bouncer, start_bouncer, stop_bouncer  # noqa: E402


def pooled_settings(database: str, bouncer: Bouncer, server: tuple[str, int], user: str
                    ) -> Settings:
    return settings_from_mapping({
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "postgresql", "pool_size": 1, "max_overflow": 1,
                     "max_tenant_engines": 5000, "max_total_connections": 1000, "postgres": {
                         "host": bouncer.host, "port": bouncer.port, "user": user,
                         "database": database, "pooler": "pgbouncer_transaction",
                         "direct": {"host": server[0], "port": server[1]}}}},
        "<benchmark pooler>", base_dir=Path.cwd())


def warm(manager: TenantDatabaseManager, bouncer: Bouncer, iterations: int, rounds: int,
         timed: Any) -> None:
    manager.provision("warm")
    pg = manager.settings.postgres
    plain = create_engine(pg.url(application_name="plain").set(host=bouncer.host,
                                                                port=bouncer.port),
                          pool_size=2, max_overflow=2)

    def routed() -> None:
        with manager.get_tenant_session("warm") as session:
            session.execute(text("SELECT 1")).scalar_one()

    def baseline() -> None:
        with Session(bind=plain) as session:
            session.execute(text("SELECT 1")).scalar_one()

    routed(), baseline()
    ratios, routed_us, plain_us = [], [], []
    for _ in range(rounds):  # interleaved so drift hits both sides alike
        b, r = timed(baseline, iterations), timed(routed, iterations)
        ratios.append(r / b)
        routed_us.append(r * 1e6)
        plain_us.append(b * 1e6)
    ratio = statistics.median(ratios)
    print(f"pooler warm routing: routed {statistics.median(routed_us):.1f} us, unrouted "
          f"{statistics.median(plain_us):.1f} us through the same PgBouncer, ratio "
          f"{ratio:.3f} (median of {rounds} rounds; target <= 1.2: "
          f"{'OK' if ratio <= 1.2 else 'MISSED'})")
    plain.dispose()


def load(manager: TenantDatabaseManager, bouncer: Bouncer, tenants: int, threads: int,
         ops: int, provision_all: Any) -> None:
    names = [f"p{i}" for i in range(tenants)]
    seconds = provision_all(manager, names)
    print(f"provisioned {tenants} tenants in {seconds:.1f}s (direct path)")
    errors: list[str] = []
    misrouted = 0
    lock = threading.Lock()
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            rows = [p for p in bouncer.show("POOLS") if p["database"] == manager.settings
                    .postgres.database]
            peak = max([peak] + [p["sv_active"] + p["sv_idle"] + p["sv_used"] for p in rows])
            time.sleep(0.05)

    def work(worker: int) -> None:
        nonlocal misrouted
        rnd = random.Random(worker)
        for _ in range(ops // threads):
            tenant = rnd.choice(names)
            try:
                with manager.tenant_transaction(tenant) as session:
                    schema = session.execute(text("SELECT current_schema()")).scalar_one()
                    session.execute(text("SELECT count(*) FROM docbasket")).scalar_one()
                if schema != manager.backend.location(tenant):
                    with lock:
                        misrouted += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(exc).splitlines()[0])

    elapsed = run_sampled(work, threads, sample, stop)
    size = int(next(r["value"] for r in bouncer.show("CONFIG") if r["key"] ==
                    "default_pool_size"))
    ok = not errors and misrouted == 0 and peak <= size
    print(f"{tenants} tenants x {threads} threads through {size} server connections: "
          f"{ops / elapsed:.0f} tx/s, {len(errors)} errors, {misrouted} misrouted of "
          f"{ops // threads * threads}, PgBouncer server connections peak {peak} -> "
          f"{'OK' if ok else 'FAILED'}" + (f"; first error: {errors[0]}" if errors else ""))


def run(database: str, server: tuple[str, int], user: str, args: Any, timed: Any,
        provision_all: Any) -> None:
    bouncer = start_bouncer(server=server, default_pool_size=args.server_connections)
    try:
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(pooled_settings(database, bouncer, server, user))
        warm(manager, bouncer, args.iterations, args.rounds, timed)
        if not args.warm_only:
            load(manager, bouncer, args.tenants, args.threads, args.ops, provision_all)
    finally:
        TenantDatabaseManager.reset()
        stop_bouncer(bouncer)
