"""docex-ops on Citus (schema-based sharding), beside raw SQL in the same run.

On a throw-away coordinator + 2 workers (tests/citus_support.py), each figure beside its
baseline:
- provisioning N tenants with docex-ops (``--jobs``) against the same DDL as one raw psql
  script to the coordinator, schema-based sharding on (target <= 1.0x);
- one small revision (a column and an index) across the N tenants against the raw script
  (target <= 1.25x);
- ``migrate status`` at M tenants, the whole process, package byte-compiled first as an
  installed package is (these machines set PYTHONDONTWRITEBYTECODE) (target <= 0.5 s).

    .venv/bin/python benchmarks/citus.py [--tenants 200] [--status-tenants 1000] [--jobs 4]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from citus_support import DATABASE, CitusTestCluster, citus_mapping, started_citus  # noqa: E402
from migrate import SMALL_DDL, SMALL_REVISION, ratio, run_cli, scripts_with_small_revision, timed  # noqa: E402

import docex_ops  # noqa: E402
from docex_ops.config.settings import settings_from_mapping  # noqa: E402
from docex_ops.manager.tenant_manager import TenantDatabaseManager  # noqa: E402
from docex_ops.migrate import MigrationScripts, RunOptions, Selection, migrate  # noqa: E402
from docex_ops.migrate.scripts import head_revision  # noqa: E402
from docex_ops.schema.ddl import head_ddl, version_table_ddl  # noqa: E402
from docex_ops.tenants.lifecycle import provision_tenants  # noqa: E402

SHARDING_ON = "SET citus.enable_schema_based_sharding TO on;\n"


def psql(citus: CitusTestCluster, sql: str, workdir: Path) -> float:
    """Seconds for one psql process running ``sql`` against the coordinator."""
    path = workdir / f"raw-{time.monotonic_ns()}.sql"
    path.write_text(sql)
    c = citus.coordinator
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", c.host, "-p", str(c.port),
               "-U", "postgres", "-d", DATABASE, "-f", str(path)]
    return timed(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL))


def raw_provision_sql(schemas: list[str]) -> str:
    body = head_ddl("postgresql") + version_table_ddl(head_revision())
    return SHARDING_ON + "".join(
        f'BEGIN;\nCREATE SCHEMA "{s}";\nSET LOCAL search_path TO "{s}";\n{body}COMMIT;\n'
        for s in schemas)


def raw_revision_sql(schemas: list[str]) -> str:
    return "".join(f'BEGIN;\nSET LOCAL search_path TO "{s}";\n{SMALL_DDL}'
                   f"UPDATE alembic_version SET version_num = '{SMALL_REVISION}';\nCOMMIT;\n"
                   for s in schemas)


def manager_for(citus: CitusTestCluster, prefix: str) -> TenantDatabaseManager:
    TenantDatabaseManager.reset()
    return TenantDatabaseManager(settings_from_mapping(citus_mapping(citus, prefix),
                                                       f"<bench {prefix}>"))


def row(what: str, ours: float, base: float, target: str, note: str) -> dict[str, Any]:
    return {"what": what, "docex-ops s": f"{ours:.3f}", "baseline s": f"{base:.3f}",
            "ratio": ratio(ours, base), "target": target, "note": note}


def bench_provision_and_revision(citus: CitusTestCluster, count: int, jobs: int,
                                 workdir: Path, scripts: MigrationScripts,
                                 rows: list[dict[str, Any]]) -> None:
    ids = [f"t{i:05d}" for i in range(count)]
    raw = psql(citus, raw_provision_sql([f"raw_{t}" for t in ids]), workdir)
    manager = manager_for(citus, "ops_")
    ours = timed(lambda: provision_tenants(manager, ids, jobs=jobs))
    placed = manager.topology.citus_cluster("bench").by_node(ids)
    rows.append(row(f"provision {count} tenants", ours, raw, "<= 1.0x",
                    f"jobs={jobs}; raw: one psql script, sharding on; tenants per node "
                    + "/".join(str(len(v)) for v in placed.values())))
    raw_rev = psql(citus, raw_revision_sql([f"raw_{t}" for t in ids]), workdir)
    report = migrate(manager, scripts, Selection(), "upgrade", "head",
                     RunOptions(jobs=jobs, actor="bench"))
    assert report.ok and len(report.results) == count, report.failed[:3]
    rows.append(row(f"small revision x {count}", report.seconds, raw_rev, "<= 1.25x",
                    f"jobs={jobs} per worker node; raw: one psql script"))
    TenantDatabaseManager.reset()


def bench_status(citus: CitusTestCluster, count: int, jobs: int, workdir: Path,
                 scripts: MigrationScripts, rows: list[dict[str, Any]]) -> None:
    manager = manager_for(citus, "st_")
    # Setup, not measured: as many jobs as keep the coordinator busy.
    provision_tenants(manager, [f"s{i:05d}" for i in range(count)], jobs=max(jobs, 8))
    TenantDatabaseManager.reset()
    config = workdir / "status.yaml"
    config.write_text(yaml.safe_dump(citus_mapping(citus, "st_")))
    python = statistics.median(timed(lambda: subprocess.run(
        [sys.executable, "-c", "import docex_ops.cli"], check=True)) for _ in range(3))
    runs = [run_cli(config, scripts, "status") for _ in range(5)]
    seconds = statistics.median(r[0] for r in runs)
    rows.append({"what": f"migrate status at {count} Citus tenants (process)",
                 "docex-ops s": f"{seconds:.3f}", "baseline s": f"{python:.3f}",
                 "ratio": ratio(seconds, python), "target": "<= 0.5 s",
                 "note": "median of 5; baseline = python importing docex_ops.cli"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--status-tenants", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    from tabulate import tabulate

    # As an installed package is: these machines set PYTHONDONTWRITEBYTECODE.
    compileall.compile_dir(Path(docex_ops.__file__).parent, quiet=1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="docex-ops-bench-citus-") as tmp, \
            started_citus() as citus:
        workdir = Path(tmp)
        scripts = MigrationScripts(scripts_with_small_revision(workdir))
        bench_provision_and_revision(citus, args.tenants, args.jobs, workdir, scripts, rows)
        bench_status(citus, args.status_tenants, args.jobs, workdir, scripts, rows)
    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
