"""The lint's cost: linting every shipped revision (both backends) beyond the start-up of
a Python process that imports docex-ops' CLI, and an upgrade of N tenants with the lint
and waves against the same upgrade without them (goals: <= 0.2 s, <= 1.1x).

The lint is timed twice: cold (an empty render cache: Alembic renders every revision)
and warm (the rendered SQL read back from the cache, as every lint after the first).
The upgrades alternate (plain, gated, gated, plain, ...) so neither gets the other's
warm caches; each round uses a fresh MigrationScripts, as a new process would.

    .venv/bin/python benchmarks/lint.py                  # 1,000 tenants, 5 rounds
    .venv/bin/python benchmarks/lint.py --tenants 200 --rounds 2
    .venv/bin/python benchmarks/lint.py --lint-only
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

from migrate import SMALL_REVISION, pg_admin, pg_settings, scripts_with_small_revision, tenant_ids

from docex_ops.lint.cache import CACHE_ENV
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import (
    MigrationScripts,
    RunOptions,
    Selection,
    lint_gate,
    make_plan,
    run_plan,
    runner,
)
from docex_ops.migrate.scripts import head_revision
from docex_ops.tenants.lifecycle import provision_tenants

STARTUP = "import docex_ops.cli"
LINT_ALL = ("import docex_ops.cli\nfrom docex_ops.lint.run import lint_revisions\n"
            "from docex_ops.migrate.scripts import MigrationScripts\n"
            "assert lint_revisions(MigrationScripts(), ['postgresql', 'sqlite'], "
            "lock_timeout=5.0).ok\n")
WAVES = ("1", "5%", "25%", "100%")


def process_seconds(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one Python process running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def lint_beyond_startup(runs: int = 9) -> None:
    """Start-up and lint processes alternate, so a change in the machine's load falls on
    both; the figure is the median of the pairs' differences (CPU time beside it: on a
    loaded machine it is the steadier of the two)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, CACHE_ENV: cache}
        cold = process_seconds(LINT_ALL, env)[0] - process_seconds(STARTUP, env)[0]
        pairs = [(process_seconds(STARTUP, env), process_seconds(LINT_ALL, env))
                 for _ in range(runs)]
    wall = statistics.median(lint[0] - startup[0] for startup, lint in pairs)
    cpu = statistics.median(lint[1] - startup[1] for startup, lint in pairs)
    startup = statistics.median(startup[0] for startup, _ in pairs)
    print(f"lint of every shipped revision: {wall:.3f}s beyond start-up ({startup:.3f}s), "
          f"{cpu:.3f}s CPU, with the render cache (goal <= 0.2s); {cold:.3f}s cold (the "
          "first lint: Alembic renders every revision)")


def upgrade_with_and_without(count: int, rounds: int) -> None:
    database = f"bench_lint_{uuid.uuid4().hex[:8]}"
    admin = pg_admin()
    admin.cursor().execute(f'CREATE DATABASE "{database}"')
    try:
        manager = TenantDatabaseManager(pg_settings(database))
        provision_tenants(manager, tenant_ids(count), jobs=4)
        with tempfile.TemporaryDirectory() as tmp:
            location = scripts_with_small_revision(Path(tmp))
            os.environ[CACHE_ENV] = str(Path(tmp) / "cache")  # empty: round 1's lint is cold
            _upgrade(manager, MigrationScripts(location), False)  # warm-up: fresh schemas
            plain_times, gated_times = [], []
            for index in range(rounds):
                order = (False, True) if index % 2 == 0 else (True, False)
                for gated in order:
                    seconds, lint = _upgrade(manager, MigrationScripts(location), gated)
                    (gated_times if gated else plain_times).append(seconds)
                    what = f"gated (lint {lint:.3f}s)" if gated else "plain"
                    print(f"  round {index + 1}: {what} {seconds:.2f}s")
        ratios = [g / p for p, g in zip(plain_times, gated_times, strict=True)]
        print(f"upgrade of {count} tenants: {statistics.median(plain_times):.2f}s plain, "
              f"{statistics.median(gated_times):.2f}s with lint and waves (medians); "
              f"ratio per round {min(ratios):.2f}x-{max(ratios):.2f}x, median "
              f"{statistics.median(ratios):.2f}x over {rounds} rounds (goal <= 1.1x)")
        manager.close_all_connections()
        TenantDatabaseManager.reset()
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _upgrade(manager: TenantDatabaseManager, scripts: MigrationScripts, gated: bool
             ) -> tuple[float, float]:
    """Upgrade to the small revision and back (the way back is not timed): the seconds
    of the whole upgrade and of its lint. run_plan always lints an upgrade (its gate); the
    plain upgrade switches the gate off here, which no user path can do."""
    options = RunOptions(jobs=4, waves=WAVES if gated else ())
    linted: list[float] = []

    def gate(*args: Any, **kwargs: Any) -> Any:
        if not gated:
            return None
        linting = time.perf_counter()
        report = lint_gate.gate(*args, **kwargs)
        linted.append(time.perf_counter() - linting)
        assert report is not None and report.ok, report and report.stopping
        return report

    started = time.perf_counter()
    plan = make_plan(manager, scripts, Selection(), "upgrade", SMALL_REVISION)
    with mock.patch.object(runner, "gate", gate):
        result = run_plan(manager, scripts, plan, options)
    seconds = time.perf_counter() - started
    assert result.ok, result.failed[:3]
    run_plan(manager, scripts, make_plan(manager, scripts, Selection(), "downgrade",
                                         head_revision()), options)
    return seconds, sum(linted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lint-only", action="store_true")
    args = parser.parse_args()
    lint_beyond_startup()
    if not args.lint_only:
        upgrade_with_and_without(args.tenants, args.rounds)


if __name__ == "__main__":
    main()
