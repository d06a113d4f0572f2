"""`docex-ops metrics` whole process at N PostgreSQL tenants, against `migrate status`
measured in the same run (the same discovery, without sizes, connections, runs,
isolation and backups), and peak RSS at each N (memory should stay flat in N).

Each N gets a database of its own, provisioned with docex-ops (and two recorded runs, one
tenant left behind head, an isolation record and a backup of every tenant, so every part
of the snapshot is read),
created and dropped here. The package is byte-compiled first, as installing a wheel does.

    .venv/bin/python benchmarks/observe.py                      # 10, 100 and 1,000 tenants
    .venv/bin/python benchmarks/observe.py --tenants 10,10000 --no-backups
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from migrate import (  # noqa: E402 - the sibling benchmark's helpers
    byte_compile_package,
    pg_admin,
    pg_config,
    pg_settings,
    ratio,
    tenant_ids,
    timed,
)

from docex_ops.manager.tenant_manager import TenantDatabaseManager  # noqa: E402
from docex_ops.tenants.lifecycle import provision_tenants  # noqa: E402

RUNS = 3
GNU_TIME = "/usr/bin/time"
TARGET_S = {1000: 1.0, 10000: 5.0}  # the targets, whole process
REPORT_TARGET_S = {1000: 2.0, 10000: 5.0}  # report --html's

# (label, arguments after `docex-ops --config C -q`, target seconds by N). The htmlreport
# branch adds `report --html FILE` here (target 2 s at 1,000).
COMMANDS: list[tuple[str, list[str], dict[int, float]]] = [
    ("migrate status", ["--format", "json", "migrate", "status"], {}),
    ("metrics", ["metrics"], TARGET_S),
]


def run_process(config: Path, args: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (kB) of one docex-ops process. The RSS is GNU time's: a
    child forked from this process would report this process' own peak (os.wait4 counts
    the memory it had before exec)."""
    command = [sys.executable, "-m", "docex_ops.cli", "--config", str(config), "-q", *args]
    with tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        done = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss.name, *command],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
        peak = int(rss.read().split()[-1])
    if done.returncode not in (0, 1):  # status exits 1 on a tenant behind with --check
        raise RuntimeError(f"{' '.join(args)}: {done.stderr}")
    return elapsed, peak


def prepare(config: Path, workdir: Path, backups: bool) -> Path | None:
    """Recorded runs, a tenant behind head, an isolation record and (optionally) a backup
    folder of every tenant."""
    base = [sys.executable, "-m", "docex_ops.cli", "--config", str(config), "-q"]
    for step in (["upgrade"], ["downgrade", "-1", "--tenant", "t00000", "--force"]):
        subprocess.run([*base, "migrate", *step], stdout=subprocess.DEVNULL, check=True)
    subprocess.run([*base, "verify-isolation", "--check", "contents", "--record"],
                   stdout=subprocess.DEVNULL, check=False)
    if not backups:
        return None
    folder = workdir / "backups"
    seconds = timed(lambda: subprocess.run([*base, "backup", "create", "--all", "-j", "2",
                                            "--dest", str(folder)],
                                           stdout=subprocess.DEVNULL, check=True))
    print(f"  backed up every tenant in {seconds:.1f}s", flush=True)
    return folder


def bench(count: int, jobs: int, workdir: Path, backups: bool,
          rows: list[dict[str, Any]], first_rss: dict[str, int]) -> None:
    database = f"docex_ops_bench_observe_{uuid.uuid4().hex[:6]}"
    admin = pg_admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    try:
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(pg_settings(database))
        seconds = timed(lambda: provision_tenants(manager, tenant_ids(count), jobs=jobs))
        print(f"{count} tenants provisioned in {seconds:.1f}s", flush=True)
        TenantDatabaseManager.reset()
        config = pg_config(workdir, database)
        folder = prepare(config, workdir / str(count), backups)
        commands = list(COMMANDS)
        if folder is not None:
            commands.append(("metrics --backups", ["metrics", "--backups", str(folder)],
                             TARGET_S))
        page = str(workdir / f"report-{count}.html")  # replaced by each run
        commands.append(("report --html", ["report", "--html", page], REPORT_TARGET_S))
        if folder is not None:
            commands.append(("report --html --backups", ["report", "--html", page,
                                                         "--backups", str(folder)],
                             REPORT_TARGET_S))
        measured: dict[str, float] = {}
        for label, args, targets in commands:
            run_process(config, args)  # warm the server's caches and the bytecode
            runs = [run_process(config, args) for _ in range(RUNS)]
            seconds = statistics.median(r[0] for r in runs)
            measured[label] = seconds
            target = targets.get(count)
            peak = max(r[1] for r in runs)
            # Memory flat in N: the same command's peak at the smallest N of this run.
            first_rss.setdefault(label, peak)
            rows.append({
                "tenants": count, "command": label, "seconds": f"{seconds:.3f}",
                "vs migrate status": ratio(seconds, measured["migrate status"]),
                "peak RSS MB": f"{peak / 1024:.1f}",
                "RSS vs smallest N": f"{peak / first_rss[label]:.2f}x",
                "target": f"<= {target:g} s {'ok' if seconds <= target else 'MISSED'}"
                          if target else "-"})
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", default="10,100,1000",
                        help="comma-separated tenant counts, smallest first: its peak RSS "
                             "is the baseline (default 10,100,1000)")
    parser.add_argument("--jobs", type=int, default=2, help="provisioning workers")
    parser.add_argument("--no-backups", action="store_true",
                        help="skip the backup folder (and `metrics --backups`)")
    args = parser.parse_args()
    from tabulate import tabulate

    byte_compile_package()
    rows: list[dict[str, Any]] = []
    first_rss: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="docex-ops-bench-observe-") as tmp:
            for count in (int(n) for n in args.tenants.split(",")):
                bench(count, args.jobs, Path(tmp), not args.no_backups, rows, first_rss)
    finally:  # what was measured before a failure is still worth reading
        print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
