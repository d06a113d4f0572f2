"""Backing up every tenant vs. the database's own whole-database baseline, same run.

    .venv/bin/python benchmarks/backup.py [--tenants 200] [--docs 20] [--jobs 2]
        [--kinds postgresql,sqlite] [--per-tenant-sample 20]

PostgreSQL (127.0.0.1:5432, trust auth; a scratch database is created and dropped):
N tenants with data, ``backup create --all --jobs J`` (batched pg_dumps plus the
in-snapshot checksums) beside one ``pg_dump --format=custom`` of the whole database.
With ``--per-tenant-sample K`` it also times K tenants dumped one pg_dump each and
extrapolates to N, to show what batching saves. One tenant is then restored under
another id and compared with its manifest (rows lost: must be 0).
SQLite: N tenant files, ``backup create --all`` (online backup API + checksums) beside
a plain file copy of the same files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2

from docex_ops import schema as s
from docex_ops.backends.archivers import make_archiver
from docex_ops.backends.pg_tools import tool_env
from docex_ops.backup import create_backups, restore_backup
from docex_ops.config import settings_from_mapping
from docex_ops.manager import TenantDatabaseManager


def fill(manager: TenantDatabaseManager, tenant_id: str, docs: int) -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, 250000)
    with manager.tenant_transaction(tenant_id) as session:
        session.execute(s.docbasket.insert().values(
            id="bas_1", name="basket", storage_config={"type": "local"}, status="active",
            created_at=now, updated_at=now))
        session.execute(s.document.insert(), [dict(
            id=f"doc_{i}", basket_id="bas_1", name=f"d{i}", source="s3://b/" + "k" * 80,
            path=f"/p/{i}", document_type="file", content={"i": i, "t": "ünï"},
            raw_content="x" * 2000, size=2000, checksum="c" * 64, status="new",
            processing_attempts=0, created_at=now, updated_at=now) for i in range(docs)])
        session.execute(s.document_metadata.insert(), [dict(
            id=f"dmt_{i}", document_id=f"doc_{i}", key="k", value="v" * 50,
            metadata_type="custom", created_at=now, updated_at=now) for i in range(docs)])
        session.execute(s.doc_events.insert(), [dict(
            id=f"evt_{i}", basket_id="bas_1", document_id=f"doc_{i}", event_type="created",
            event_timestamp=now, data={"i": i}, created_at=now, updated_at=now)
            for i in range(docs)])


def populate(manager: TenantDatabaseManager, n: int, docs: int) -> list[str]:
    ids = [f"t{i:05d}" for i in range(n)]
    for tenant_id in ids:
        manager.provision(tenant_id)
        fill(manager, tenant_id, docs)
        manager.close_tenant_connection(tenant_id)  # one pool per tenant would exhaust the server
    manager.close_all_connections()
    return ids


def timed(label: str, fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"  {label:<46} {seconds:8.2f} s", flush=True)
    return seconds


def bench_postgres(args: argparse.Namespace, work: Path) -> None:
    db = f"docex_ops_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db}"')
    try:
        settings = settings_from_mapping({"database": {"type": "postgresql", "postgres": {
            "host": "127.0.0.1", "port": 5432, "user": "postgres", "database": db}}})
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(settings)
        print(f"PostgreSQL: {args.tenants} tenants x {args.docs} documents", flush=True)
        populate(manager, args.tenants, args.docs)
        env = tool_env(settings.postgres, "bench")
        whole = timed("pg_dump of the whole database (baseline)", lambda: subprocess.run(
            ["pg_dump", "--format=custom", f"--file={work / 'whole.pgdump'}"], env=env,
            check=True))
        results: list = []
        ours = timed(f"backup create --all --jobs {args.jobs} (batched)", lambda: results.extend(
            create_backups(manager, None, work / "pg", jobs=args.jobs)))
        failed = [r.tenant_id for r in results if not r.ok]
        archives = len({r.archive for r in results if r.ok})
        print(f"  -> {len(results) - len(failed)} tenants ok, {len(failed)} failed, "
              f"{archives} archive file(s)")
        print(f"  ratio backup-all / whole-database pg_dump: {ours / whole:.2f}x "
              "(target <= 2x)")
        if args.per_tenant_sample:
            k = min(args.per_tenant_sample, args.tenants)
            one = timed(f"{k} tenants, one pg_dump each", lambda: create_backups(
                manager, [f"t{i:05d}" for i in range(k)], work / "pg1", batch_size=1))
            print(f"  -> one-by-one extrapolated to {args.tenants}: "
                  f"{one / k * args.tenants:.1f} s = {one / k * args.tenants / whole:.1f}x "
                  "the whole-database dump")
        manifest = next(r.manifest for r in results if r.ok)
        restored = restore_backup(manager, manifest, as_tenant="restored_copy")
        archiver = make_archiver(manager.backend)
        live = archiver.digest_tenant("restored_copy")
        archiver.dispose()
        lost = restored.rows - sum(d.rows for d in live.values())
        print(f"  restore check of {restored.source_tenant_id} as restored_copy: "
              f"{restored.rows} rows, rows lost {lost}")
        TenantDatabaseManager.reset()
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def bench_sqlite(args: argparse.Namespace, work: Path) -> None:
    storage = work / "storage"
    settings = settings_from_mapping({"database": {"type": "sqlite", "sqlite": {
        "path_template": str(storage / "tenant_{tenant_id}" / "docex.db")}}})
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    print(f"SQLite: {args.tenants} tenant files x {args.docs} documents", flush=True)
    ids = populate(manager, args.tenants, args.docs)
    files = [Path(manager.backend.location(t)) for t in ids]
    copies = work / "copies"
    copies.mkdir()
    copy = timed("plain file copy of every tenant file (baseline)", lambda: [
        shutil.copyfile(f, copies / f"{i}.db") for i, f in enumerate(files)])
    results: list = []
    ours = timed(f"backup create --all --jobs {args.jobs}", lambda: results.extend(
        create_backups(manager, None, work / "sq", jobs=args.jobs)))
    print(f"  -> {sum(r.ok for r in results)} tenants ok")
    print(f"  ratio backup-all / file copy: {ours / copy:.2f}x (target <= 1.5x)")
    TenantDatabaseManager.reset()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--docs", type=int, default=20, help="documents per tenant")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--kinds", default="postgresql,sqlite")
    parser.add_argument("--per-tenant-sample", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docex-bench-") as tmp:
        for kind in args.kinds.split(","):
            work = Path(tmp) / kind
            work.mkdir()
            {"postgresql": bench_postgres, "sqlite": bench_sqlite}[kind](args, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
