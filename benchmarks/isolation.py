"""How long verify-isolation takes on N PostgreSQL tenants, each with its own role.

Targets at 1,000 tenants: everything (live routing and the live probe included)
<= 10 s, the catalog checks <= 3 s.

Creates a scratch database, provisions N tenants through the manager and gives
each its own role (``tenants provision --with-role``: the live probe acts as
them), then times, in the same run:
  baseline   one plain catalog query over pg_class for the tenant schemas
  catalog    every check that only reads the catalog snapshot (contents,
             references, reach_in, code, shadowing, search_path, writable_path,
             privileges, default_privileges, roles, readers, pooler): one query
             (or a fixed few) each for all tenants
  each       every check alone (best of the repeats), live ones included
  full       everything: the catalog checks, live routing (one manager engine
             per tenant, opened, probed with a rolled-back canary, closed) and the
             live probe (a sample of tenant roles trying other tenants and public)
and prints seconds, the ratio against the baseline and whether the targets hold.
The database and the roles are dropped.

    .venv/bin/python benchmarks/isolation.py --tenants 1000
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg2
from sqlalchemy import text

from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.settings import settings_from_mapping
from docex_ops.isolation import Status, verify_isolation
from docex_ops.isolation.registry import checks_for
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenants.roles import ensure_tenant_role

FULL_TARGET_S, CATALOG_TARGET_S = 10.0, 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()

    token = uuid.uuid4().hex[:8]
    database = f"docex_ops_bench_iso_{token}"
    admin = psycopg2.connect(host=args.host, port=args.port, user=args.user, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    try:
        run(args, database, f"b{token}")
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                        (f"docex\\_t\\_b{token}%",))
            for (role,) in cur.fetchall():  # roles are cluster-wide: ours go with the database
                cur.execute(f'DROP ROLE "{role}"')
        admin.close()


def run(args: argparse.Namespace, database: str, prefix: str) -> None:
    settings = settings_from_mapping({"database": {"type": "postgresql", "postgres": {
        "host": args.host, "port": args.port, "user": args.user, "database": database}}},
        "<benchmark>")
    manager = TenantDatabaseManager(settings)
    backend = manager.backend
    assert isinstance(backend, PostgresBackend)
    tenants = [f"{prefix}{i:05d}" for i in range(args.tenants)]

    def provision(tenant: str) -> None:
        manager.provision(tenant)
        ensure_tenant_role(backend, tenant)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(provision, tenants))
    print(f"provisioned {len(tenants)} tenants, each with its own role, in "
          f"{time.perf_counter() - started:.1f} s")

    checks = checks_for("postgresql")
    catalog_checks = [c.name for c in checks if not c.live]

    def baseline() -> None:
        with backend.admin_engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                              "ON n.oid = c.relnamespace WHERE n.nspname LIKE 'tenant\\_%'"))

    def verified(only: list[str]) -> Callable[[], None]:
        def once() -> None:
            report = verify_isolation(manager, only=only)
            bad = [r for r in report.results if r.status == Status.FAIL]
            assert not bad, bad[:3]
            assert manager.list_tenant_databases() == []
        return once

    base = best(baseline, args.repeat)
    print(f"baseline (one pg_class query): {base:.4f} s")
    for check in checks:
        print(f"  {check.name:<20} {best(verified([check.name]), args.repeat):6.3f} s")
    catalog = best(verified(catalog_checks), args.repeat)
    full = best(verified([]), args.repeat)
    for label, seconds, target in (("catalog checks", catalog, CATALOG_TARGET_S),
                                   ("full verify-isolation (live routing and probe included)",
                                    full, FULL_TARGET_S)):
        verdict = "within" if seconds <= target else "OVER"
        print(f"{label}: {seconds:.2f} s at {len(tenants)} tenants ({seconds / base:.0f}x "
              f"baseline; {verdict} the {target:g} s target)")


def best(func: Callable[[], None], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        timings.append(time.perf_counter() - started)
    return min(timings)


if __name__ == "__main__":
    main()
