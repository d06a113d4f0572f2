"""Provisioning, one small revision, and status / no-op upgrade across N tenants.

Every docex-ops figure is printed beside baselines measured in the same run:
- PostgreSQL: the same DDL as one raw SQL script through psql (one transaction
  per tenant), and a naive Alembic loop (Alembic run online once per tenant);
- SQLite: the raw sqlite3 module in one loop.
Each method works in a database of its own, created and dropped here.

    .venv/bin/python benchmarks/migrate.py                 # 1,000 tenants, both backends
    .venv/bin/python benchmarks/migrate.py --tenants 200 --backend sqlite
    .venv/bin/python benchmarks/migrate.py --status-only --tenants 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg2
import yaml

from docex_ops.backends import Backend
from docex_ops.config.settings import Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, RunOptions, Selection, StepOptions, migrate
from docex_ops.migrate.scripts import MIGRATIONS_DIR, head_revision
from docex_ops.migrate.tenant import run_online
from docex_ops.schema.ddl import head_ddl, version_table_ddl
from docex_ops.tenants.lifecycle import provision_tenants

PG = {"host": os.environ.get("DOCEX_BENCH_PGHOST", "127.0.0.1"),
      "port": int(os.environ.get("DOCEX_BENCH_PGPORT", "5432")), "user": "postgres"}
SMALL_REVISION = "0004_bench_note"
SMALL_DDL = ("ALTER TABLE document ADD COLUMN note TEXT;\n"
             "CREATE INDEX ix_document_note ON document (note);\n")


def timed(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


def tenant_ids(count: int) -> list[str]:
    return [f"t{i:05d}" for i in range(count)]


def scripts_with_small_revision(workdir: Path) -> Path:
    target = workdir / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "versions" / f"{SMALL_REVISION}.py").write_text(
        '"""Benchmark: a small revision."""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {SMALL_REVISION!r}\ndown_revision = {head_revision()!r}\n"
        "branch_labels = None\ndepends_on = None\nfast_path = True\n\n\n"
        "def upgrade() -> None:\n"
        '    op.add_column("document", sa.Column("note", sa.Text()))\n'
        '    op.create_index("ix_document_note", "document", ["note"])'
        "  # lint: allow index-not-concurrent: benchmark tenants hold no rows\n\n\n"
        "def downgrade() -> None:\n"
        '    op.drop_index("ix_document_note", "document")\n'
        '    op.drop_column("document", "note")\n')
    return target


# -- PostgreSQL --------------------------------------------------------------------------

def pg_admin() -> Any:
    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    return conn


def pg_settings(database: str) -> Settings:
    return settings_from_mapping({"database": {"type": "postgresql", "postgres": {
        **PG, "database": database}}}, f"<bench {database}>")


def psql_script(database: str, sql: str, workdir: Path) -> float:
    path = workdir / f"{database}-{uuid.uuid4().hex[:6]}.sql"
    path.write_text(sql)
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG["host"], "-p",
               str(PG["port"]), "-U", PG["user"], "-d", database, "-f", str(path)]
    return timed(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL))


def raw_provision_sql(ids: list[str]) -> str:
    body = head_ddl("postgresql") + version_table_ddl(head_revision())
    return "".join(f'BEGIN;\nCREATE SCHEMA "tenant_{t}";\nSET LOCAL search_path TO '
                   f'"tenant_{t}";\n{body}COMMIT;\n' for t in ids)


def raw_revision_sql(ids: list[str]) -> str:
    return "".join(f'BEGIN;\nSET LOCAL search_path TO "tenant_{t}";\n{SMALL_DDL}'
                   f"UPDATE alembic_version SET version_num = '{SMALL_REVISION}';\nCOMMIT;\n"
                   for t in ids)


def naive_alembic_loop(backend: Backend, scripts: MigrationScripts, ids: list[str],
                       create: bool) -> None:
    """What an env.py that configures and runs Alembic once per tenant does."""
    for tenant_id in ids:
        if create:
            backend.create(tenant_id, "")
        with backend.migration_connection(tenant_id) as conn:
            run_online(scripts, conn, "upgrade", "head")


def bench_postgres(count: int, jobs: int, workdir: Path, scripts: MigrationScripts,
                   rows: list[dict[str, Any]]) -> None:
    ids = tenant_ids(count)
    databases = {name: f"docex_ops_bench_{name}_{uuid.uuid4().hex[:6]}"
                 for name in ("raw", "ops", "naive")}
    admin = pg_admin()
    with admin.cursor() as cur:
        for database in databases.values():
            cur.execute(f'CREATE DATABASE "{database}"')
    try:
        raw = psql_script(databases["raw"], raw_provision_sql(ids), workdir)
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(pg_settings(databases["ops"]))
        ours = timed(lambda: provision_tenants(manager, ids, jobs=jobs))
        naive_backend = TenantDatabaseManager.__new__(TenantDatabaseManager)
        naive_backend._setup(pg_settings(databases["naive"]))
        base_scripts = MigrationScripts()
        naive = timed(lambda: naive_alembic_loop(naive_backend.backend, base_scripts, ids,
                                                 create=True))
        rows.append(_row("postgresql", f"provision {count} tenants", ours, raw, naive,
                         f"jobs={jobs}"))

        raw_rev = psql_script(databases["raw"], raw_revision_sql(ids), workdir)
        options = RunOptions(step=StepOptions(), jobs=max(2, jobs // 2))
        report = migrate(manager, scripts, Selection(), "upgrade", "head", options)
        assert report.ok and len(report.results) == count, report.failed[:3]
        ours_rev = report.seconds
        naive_rev = timed(lambda: naive_alembic_loop(naive_backend.backend, scripts, ids,
                                                     create=False))
        rows.append(_row("postgresql", f"small revision x {count}", ours_rev, raw_rev,
                         naive_rev, f"jobs={options.jobs}"))
        bench_status(pg_config(workdir, databases["ops"]), scripts, count, "postgresql", rows,
                     naive_status=lambda: pg_naive_status(databases["ops"], ids))
        naive_backend.backend.dispose()
        TenantDatabaseManager.reset()
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            for database in databases.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def pg_config(workdir: Path, database: str) -> Path:
    path = workdir / f"{database}.yaml"
    path.write_text(yaml.safe_dump({"database": {"type": "postgresql", "postgres": {
        **PG, "database": database}}}))
    return path


def pg_naive_status(database: str, ids: list[str]) -> None:
    """The naive way to read every revision: one query per tenant, one connection."""
    with closing(psycopg2.connect(dbname=database, **PG)) as conn, conn.cursor() as cur:
        conn.autocommit = True  # one transaction would run out of lock slots
        for tenant_id in ids:
            cur.execute(f'SELECT version_num FROM "tenant_{tenant_id}".alembic_version')
            cur.fetchall()


def psql_status_floor(database: str, ids: list[str]) -> None:
    """The floor the issue names: one psql process reading every tenant's revision in a
    plpgsql loop (process start, connection and the reads, nothing else). One DO block per
    1,000 tenants, each its own transaction, as docex-ops reads them: one transaction
    holding a lock on 10,000 version tables exhausts the server's lock table."""
    blocks = []
    for start in range(0, len(ids), 1000):
        schemas = ",".join(f'"tenant_{t}"' for t in ids[start:start + 1000])
        blocks.append("DO $$ DECLARE s text; v text; BEGIN FOREACH s IN ARRAY "
                      f"'{{{schemas}}}'::text[] LOOP EXECUTE format('SELECT max(version_num) "
                      "FROM %I.alembic_version', s) INTO v; END LOOP; END $$;")
    # On stdin: at 10,000 tenants the script is longer than a command line may be.
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG["host"], "-p",
                    str(PG["port"]), "-U", PG["user"], "-d", database, "-f", "-"],
                   input="\n".join(blocks).encode(), check=True)


# -- SQLite ------------------------------------------------------------------------------

def sqlite_settings(root: Path) -> Settings:
    return settings_from_mapping({"database": {"type": "sqlite", "sqlite": {
        "path_template": str(root / "tenant_{tenant_id}" / "docex.db")}}}, "<bench sqlite>")


def raw_sqlite_loop(root: Path, ids: list[str], script: str, create: bool) -> None:
    for tenant_id in ids:
        path = root / f"tenant_{tenant_id}" / "docex.db"
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.executescript("BEGIN;\n" + script + "COMMIT;")


def bench_sqlite(count: int, workdir: Path, scripts: MigrationScripts,
                 rows: list[dict[str, Any]]) -> None:
    ids = tenant_ids(count)
    raw_root, ops_root = workdir / "raw", workdir / "ops"
    provision_ddl = head_ddl("sqlite") + version_table_ddl(head_revision())
    raw = timed(lambda: raw_sqlite_loop(raw_root, ids, provision_ddl, create=True))
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(sqlite_settings(ops_root))
    ours = timed(lambda: provision_tenants(manager, ids))
    rows.append(_row("sqlite", f"provision {count} tenants", ours, raw, None, "jobs=1"))
    revision = SMALL_DDL + f"UPDATE alembic_version SET version_num = '{SMALL_REVISION}';\n"
    raw_rev = timed(lambda: raw_sqlite_loop(raw_root, ids, revision, create=False))
    report = migrate(manager, scripts, Selection(), "upgrade", "head", RunOptions())
    assert report.ok and len(report.results) == count, report.failed[:3]
    rows.append(_row("sqlite", f"small revision x {count}", report.seconds, raw_rev, None,
                     "jobs=1"))
    config = workdir / "sqlite.yaml"
    config.write_text(yaml.safe_dump({"database": {"type": "sqlite", "sqlite": {
        "path_template": str(ops_root / "tenant_{tenant_id}" / "docex.db")}}}))
    bench_status(config, scripts, count, "sqlite", rows, naive_status=None)
    TenantDatabaseManager.reset()


# -- status and no-op upgrade, whole process ---------------------------------------------

def run_cli(config: Path, scripts: MigrationScripts, *args: str) -> tuple[float, int]:
    """Wall time and peak RSS (kB) of one docex-ops process."""
    command = [sys.executable, "-m", "docex_ops.cli", "--config", str(config), "-q",
               "--format", "json", "migrate", "--scripts", str(scripts.location), *args]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.read() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss


def byte_compile_package() -> None:
    """Write docex_ops' bytecode once, as installing a wheel does. These machines set
    PYTHONDONTWRITEBYTECODE, so an editable checkout would otherwise recompile every module
    in every process (about 0.1 s of each timed run), which no installed user pays."""
    import compileall

    import docex_ops

    compileall.compile_dir(str(Path(docex_ops.__file__).parent), quiet=1)


def bench_status(config: Path, scripts: MigrationScripts, count: int, kind: str,
                 rows: list[dict[str, Any]], naive_status: Callable[[], None] | None) -> None:
    byte_compile_package()
    python = timed(lambda: subprocess.run([sys.executable, "-c", "import docex_ops.cli"],
                                          check=True))
    naive = timed(naive_status) if naive_status else None
    for label, args in (("migrate status", ("status",)), ("no-op migrate upgrade", ("upgrade",))):
        runs = [run_cli(config, scripts, *args) for _ in range(3)]
        seconds = statistics.median(r[0] for r in runs)
        rows.append({"backend": kind, "what": f"{label} at {count} (process)",
                     "docex-ops s": f"{seconds:.3f}", "baseline s": f"{python:.3f}",
                     "ratio": ratio(seconds, python),
                     "naive s": f"{naive:.3f}" if naive is not None else "-",
                     "note": f"baseline = python importing docex-ops; peak RSS "
                             f"{max(r[1] for r in runs) / 1024:.0f} MB"})


def _row(kind: str, what: str, ours: float, raw: float, naive: float | None,
         note: str) -> dict[str, Any]:
    return {"backend": kind, "what": what, "docex-ops s": f"{ours:.2f}",
            "baseline s": f"{raw:.2f}", "ratio": ratio(ours, raw),
            "naive s": f"{naive:.2f}" if naive is not None else "-",
            "note": note + (f"; naive Alembic {ratio(naive, raw)}" if naive else "")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=4, help="provisioning workers")
    parser.add_argument("--backend", choices=("both", "postgresql", "sqlite"), default="both")
    parser.add_argument("--status-only", action="store_true",
                        help="PostgreSQL: provision with docex-ops, then time status/no-op only")
    args = parser.parse_args()
    from tabulate import tabulate

    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="docex-ops-bench-") as tmp:
            workdir = Path(tmp)
            scripts = MigrationScripts(scripts_with_small_revision(workdir))
            if args.status_only:
                bench_status_only(args.tenants, args.jobs, workdir, rows)
            else:
                if args.backend in ("both", "postgresql"):
                    bench_postgres(args.tenants, args.jobs, workdir, scripts, rows)
                if args.backend in ("both", "sqlite"):
                    bench_sqlite(args.tenants, workdir, scripts, rows)
    finally:  # what was measured before a failure is still worth reading
        print(tabulate(rows, headers="keys", tablefmt="github"))


def bench_status_only(count: int, jobs: int, workdir: Path, rows: list[dict[str, Any]]
                      ) -> None:
    database = f"docex_ops_bench_status_{uuid.uuid4().hex[:6]}"
    admin = pg_admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    try:
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(pg_settings(database))
        ids = tenant_ids(count)
        seconds = timed(lambda: provision_tenants(manager, ids, jobs=jobs))
        rows.append({"backend": "postgresql", "what": f"provision {count} tenants",
                     "docex-ops s": f"{seconds:.1f}", "note": f"jobs={jobs}"})
        TenantDatabaseManager.reset()
        # The shipped scripts, whose head the tenants were provisioned at: with the small
        # revision the first "no-op" upgrade would apply it to every tenant.
        bench_status(pg_config(workdir, database), MigrationScripts(), count, "postgresql",
                     rows, naive_status=lambda: pg_naive_status(database, ids))
        floor = statistics.median(timed(lambda: psql_status_floor(database, ids))
                                  for _ in range(3))
        rows.append({"backend": "postgresql", "what": f"psql floor at {count} (process)",
                     "docex-ops s": "-", "baseline s": f"{floor:.3f}",
                     "note": "one psql process reading every revision in one plpgsql loop; "
                             "divide the status rows by this"})
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
