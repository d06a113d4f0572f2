"""The lint's cost: linting every shipped revision (both backends) beyond the start-up of
a Python process that imports docex-ops' CLI, and an upgrade of N tenants with the lint
and waves against the same upgrade without them (goals: <= 0.2 s, <= 1.1x).

    .venv/bin/python benchmarks/lint.py                  # 1,000 tenants
    .venv/bin/python benchmarks/lint.py --tenants 200
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

from migrate import SMALL_REVISION, pg_admin, pg_settings, scripts_with_small_revision, tenant_ids

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, RunOptions, Selection, make_plan, run_plan
from docex_ops.migrate.lint_gate import lint_plan
from docex_ops.migrate.scripts import head_revision
from docex_ops.tenants.lifecycle import provision_tenants

STARTUP = "import docex_ops.cli"
LINT_ALL = ("import docex_ops.cli\nfrom docex_ops.lint.run import lint_revisions\n"
            "from docex_ops.migrate.scripts import MigrationScripts\n"
            "assert lint_revisions(MigrationScripts(), ['postgresql', 'sqlite'], "
            "lock_timeout=5.0).ok\n")


def process_seconds(code: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def lint_beyond_startup() -> None:
    startup, lint = process_seconds(STARTUP), process_seconds(LINT_ALL)
    print(f"lint of every shipped revision: {lint - startup:.3f}s beyond start-up "
          f"({startup:.3f}s), goal <= 0.2s")


def upgrade_with_and_without(count: int) -> None:
    database = f"bench_lint_{uuid.uuid4().hex[:8]}"
    admin = pg_admin()
    admin.cursor().execute(f'CREATE DATABASE "{database}"')
    try:
        manager = TenantDatabaseManager(pg_settings(database))
        provision_tenants(manager, tenant_ids(count))
        with tempfile.TemporaryDirectory() as tmp:
            scripts = MigrationScripts(scripts_with_small_revision(Path(tmp)))
            plain = _upgrade(manager, scripts, RunOptions(jobs=4), lint=False)
            waves = RunOptions(jobs=4, waves=("1", "5%", "25%", "100%"))
            gated = _upgrade(manager, scripts, waves, lint=True)
        print(f"upgrade of {count} tenants: {plain:.2f}s plain, {gated:.2f}s with lint and "
              f"waves ({gated / plain:.2f}x, goal <= 1.1x)")
        manager.close_all_connections()
        TenantDatabaseManager.reset()
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _upgrade(manager: TenantDatabaseManager, scripts: MigrationScripts, options: RunOptions,
             lint: bool) -> float:
    """Upgrade to the small revision and back (the way back is not timed)."""
    started = time.perf_counter()
    plan = make_plan(manager, scripts, Selection(), "upgrade", SMALL_REVISION)
    if lint:
        lint_plan(manager, scripts, plan, options, allow=("index-not-concurrent",))
    report = run_plan(manager, scripts, plan, options)
    seconds = time.perf_counter() - started
    assert report.ok, report.failed[:3]
    run_plan(manager, scripts, make_plan(manager, scripts, Selection(), "downgrade",
                                         head_revision()), options)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()
    lint_beyond_startup()
    upgrade_with_and_without(args.tenants)


if __name__ == "__main__":
    main()
