"""Per-tenant provisioning time, median of N (default 50), on PostgreSQL and SQLite.

Each tenant is provisioned on its own (no parallelism), timed from the call to
the commit, beside the same DDL sent raw in the same run: one psycopg2 call per
tenant (PostgreSQL) or one sqlite3 executescript per file (SQLite).

    .venv/bin/python benchmarks/provision.py [--count 50]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

import psycopg2

from docex_ops.config.settings import Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.scripts import head_revision
from docex_ops.schema.ddl import head_ddl, version_table_ddl

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def provision_each(settings: Settings, count: int) -> list[float]:
    """Seconds per tenant, each provisioned on its own through the manager."""
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    manager.provision("warmup")
    samples = []
    for i in range(count):
        started = time.perf_counter()
        manager.provision(f"t{i}")
        samples.append(time.perf_counter() - started)
    TenantDatabaseManager.reset()
    return samples


def bench_postgres(count: int) -> tuple[float, float]:
    database = f"docex_ops_bench_prov_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{database}"')
    try:
        ours = provision_each(settings_from_mapping({"database": {
            "type": "postgresql", "postgres": {**PG, "database": database}}}), count)
        body = head_ddl("postgresql") + version_table_ddl(head_revision())
        raw = []
        with closing(psycopg2.connect(dbname=database, **PG)) as conn:
            for i in range(count):
                started = time.perf_counter()
                with conn.cursor() as cur:
                    cur.execute(f'CREATE SCHEMA "raw_{i}"; SET LOCAL search_path TO "raw_{i}";'
                                + body)
                conn.commit()
                raw.append(time.perf_counter() - started)
        return median_ms(ours), median_ms(raw)
    finally:
        TenantDatabaseManager.reset()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def bench_sqlite(count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ours = provision_each(settings_from_mapping({"database": {
            "type": "sqlite", "sqlite": {"path_template": f"{root}/t_{{tenant_id}}/docex.db"}}}),
            count)
        body = head_ddl("sqlite") + version_table_ddl(head_revision())
        raw = []
        for i in range(count):
            started = time.perf_counter()
            (root / f"raw_{i}").mkdir()
            with closing(sqlite3.connect(root / f"raw_{i}" / "docex.db",
                                         isolation_level=None)) as conn:
                conn.executescript("BEGIN;\n" + body + "COMMIT;")
            raw.append(time.perf_counter() - started)
        return median_ms(ours), median_ms(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    for kind, bench in (("postgresql", bench_postgres), ("sqlite", bench_sqlite)):
        ours, raw = bench(args.count)
        print(f"{kind:10s} provision one tenant: median of {args.count} {ours:7.2f} ms; "
              f"raw DDL {raw:7.2f} ms; ratio {ours / raw:.2f}x")


if __name__ == "__main__":
    main()
