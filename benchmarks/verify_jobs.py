"""``backup verify --restore-check``: -j 1 (the baseline) against -j N, same run, same archives.

    .venv/bin/python benchmarks/verify_jobs.py [--tenants 24] [--docs 200] [--jobs 4]
        [--kinds postgresql,sqlite] [--repeat 2]

N tenants with data (benchmarks/backup.py's fill), one archive each, then each archive
restored into a scratch place and compared with its manifest: serially, then with
``--jobs`` workers, alternating, ``--repeat`` rounds. Prints the best time of each
and the ratio (serial / parallel), and checks that both verified every archive.
PostgreSQL: a scratch database on 127.0.0.1:5432 (trust auth), dropped at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg2
from backup import populate, populate_postgres

from docex_ops.backup import create_backups
from docex_ops.backup.verify import verify_path
from docex_ops.config.settings import settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

SECURITY = {"multi_tenancy_model": "database_level", "tenant_database_routing": True}


def measure(manager: TenantDatabaseManager, dest: Path, jobs: int, repeat: int
            ) -> tuple[float, float]:
    """Best seconds of -j 1 and of -j ``jobs``, alternating rounds."""
    times: dict[int, list[float]] = {1: [], jobs: []}
    for _ in range(repeat):
        for j in (1, jobs):
            started = time.perf_counter()
            results = verify_path(dest, manager, jobs=j)
            times[j].append(time.perf_counter() - started)
            assert all(r.ok and r.restore_checked for r in results), [r.problems for r in results]
    return min(times[1]), min(times[jobs])


def run_kind(kind: str, args: argparse.Namespace, work: Path) -> None:
    database = f"docex_ops_bench_vj_{uuid.uuid4().hex[:8]}"
    admin: Any = None
    if kind == "postgresql":
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute(f'CREATE DATABASE "{database}"')
        db: dict[str, Any] = {"type": kind, "postgres": {
            "host": "127.0.0.1", "port": 5432, "user": "postgres", "database": database,
            "schema_template": "tenant_{tenant_id}"}}
    else:
        db = {"type": kind, "sqlite": {
            "path_template": str(work / "storage" / "tenant_{tenant_id}" / "docex.db")}}
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_from_mapping({"security": SECURITY,
                                                          "database": db}, "<bench>"))
    try:
        if kind == "postgresql":
            dsn = {"host": "127.0.0.1", "port": "5432", "user": "postgres", "dbname": database}
            ids = populate_postgres(manager, dsn, args.tenants, args.docs)
        else:
            ids = populate(manager, args.tenants, args.docs)
        dest = work / f"bk-{kind}"
        assert all(r.ok for r in create_backups(manager, ids, dest, batch_size=1))
        serial, parallel = measure(manager, dest, args.jobs, args.repeat)
        print(f"{kind}: {len(ids)} archives, restore-checked: -j 1 {serial:.2f} s, "
              f"-j {args.jobs} {parallel:.2f} s, ratio {serial / parallel:.2f}x", flush=True)
    finally:
        TenantDatabaseManager.reset()
        if admin is not None:
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=24)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--kinds", default="postgresql,sqlite")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docex-bench-vj-") as work:
        for kind in args.kinds.split(","):
            run_kind(kind, args, Path(work))


if __name__ == "__main__":
    main()
