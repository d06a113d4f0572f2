"""How long verify-isolation takes on N PostgreSQL tenants (target: < 10 s at 1,000).

Creates a scratch database, provisions N tenants through the manager, then
times, in the same run:
  baseline   one plain catalog query over pg_class for the tenant schemas
  catalog    every catalog check (contents, references, shadowing, search_path,
             privileges, readers, pooler): one query each for all tenants
  full       everything, including live routing (one manager engine per tenant,
             opened, probed with a rolled-back canary, closed)
and prints seconds and the ratio against the baseline. The database is dropped.

    .venv/bin/python benchmarks/isolation.py --tenants 1000
"""

from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
from sqlalchemy import text

from docex_ops.config import settings_from_mapping
from docex_ops.isolation import Status, verify_isolation
from docex_ops.isolation.registry import checks_for
from docex_ops.manager import TenantDatabaseManager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()

    database = f"docex_ops_bench_iso_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=args.host, port=args.port, user=args.user, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    try:
        run(args, database)
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def run(args: argparse.Namespace, database: str) -> None:
    settings = settings_from_mapping({"database": {"type": "postgresql", "postgres": {
        "host": args.host, "port": args.port, "user": args.user, "database": database}}},
        "<benchmark>")
    manager = TenantDatabaseManager(settings)
    tenants = [f"t{i:05d}" for i in range(args.tenants)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(manager.provision, tenants))
    print(f"provisioned {len(tenants)} tenants in {time.perf_counter() - started:.1f} s")

    catalog_checks = [c.name for c in checks_for("postgresql") if c.needs_catalog]
    engine = manager.backend.admin_engine  # type: ignore[attr-defined]

    def baseline() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                              "ON n.oid = c.relnamespace WHERE n.nspname LIKE 'tenant\\_%'"))

    def catalog() -> None:
        report = verify_isolation(manager, only=catalog_checks)
        assert report.counts()[str(Status.FAIL)] == 0

    def full() -> None:
        report = verify_isolation(manager)
        assert report.counts()[str(Status.FAIL)] == 0, report.counts()
        assert manager.list_tenant_databases() == []

    base = best(baseline, args.repeat)
    print(f"baseline (one pg_class query): {base:.4f} s")
    for label, func in (("catalog checks", catalog), ("full verify-isolation", full)):
        seconds = best(func, args.repeat)
        print(f"{label}: {seconds:.2f} s at {len(tenants)} tenants "
              f"({seconds / base:.0f}x baseline)")


def best(func: object, repeat: int) -> float:
    assert callable(func)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        timings.append(time.perf_counter() - started)
    return min(timings)


if __name__ == "__main__":
    main()
