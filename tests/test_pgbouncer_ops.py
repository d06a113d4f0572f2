"""Operator commands and the DocEX guide with tenants behind a real PgBouncer
(transaction mode, default_pool_size = 2): the guide's scenarios, the migration runner,
backups (direct path), verify-isolation, pools report / close-idle."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pgbouncer_support import Bouncer, pooled_mapping, start_bouncer, stop_bouncer
from sqlalchemy import text
from test_example import EXAMPLE, SECTIONS

from docex_ops.cli import main
from docex_ops.config.settings import settings_from_mapping
from docex_ops.isolation import Status, verify_isolation
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.pools import build_report, render_pool_report
from docex_ops.pools.pgbouncer import BouncerStats, read_bouncer


@pytest.fixture(scope="module")
def bouncer() -> Iterator[Bouncer]:
    # stats_period 1: SHOW STATS folds new figures in every second, not every minute.
    started = start_bouncer(stats_period=1)
    yield started
    stop_bouncer(started)


@pytest.fixture
def raw(pg_database: str, bouncer: Bouncer, schema_prefix: str, tmp_path: Path
        ) -> dict[str, Any]:
    mapping = pooled_mapping(pg_database, bouncer, schema_prefix, pool_size=2, max_overflow=1)
    mapping["database"]["postgres"]["pooler_admin"] = {"host": bouncer.host,
                                                       "port": bouncer.port}
    mapping["storage"] = {"documents_root": str(tmp_path / "documents")}
    mapping["logging"] = {"audit_file": str(tmp_path / "audit.jsonl")}
    return mapping


@pytest.fixture
def config_file(raw: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "pooled.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def manager(raw: dict[str, Any]) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    yield TenantDatabaseManager(settings_from_mapping(raw, "<test pooled>"))
    TenantDatabaseManager.reset()


def cli(config_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.output


def test_the_guides_scenarios_through_the_pooler(config_file: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE), "--config", str(config_file),
                             "--workdir", str(tmp_path / "work")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [s for s in SECTIONS if f"== {s}" in result.stdout] == list(SECTIONS)
    assert "[FAIL]" not in result.stdout and ", 0 failed" in result.stdout


def test_migrate_and_backup_with_the_pooler_configured(
        manager: TenantDatabaseManager, config_file: Path, tmp_path: Path) -> None:
    for tenant in ("m1", "m2"):
        manager.provision(tenant)
    code, out = cli(config_file, "--format", "json", "migrate", "upgrade")
    assert code == 0, out
    code, out = cli(config_file, "--format", "json", "backup", "create", "--all", "--dest",
                    str(tmp_path / "bk"))
    assert code == 0, out
    assert len(list((tmp_path / "bk").rglob("*.json"))) >= 2  # one manifest per tenant


def test_verify_isolation_reads_the_pool_mode_from_the_console(
        manager: TenantDatabaseManager) -> None:
    manager.provision("iso1")
    manager.provision("iso2")
    results = verify_isolation(manager, only=["pooler", "routing"]).results
    pooler = [r for r in results if r.check == "pooler"]
    assert [r.status for r in pooler] == [Status.PASS]
    assert "pool_mode = transaction" in pooler[0].detail
    assert all(r.status == Status.PASS for r in results if r.check == "routing")


def test_verify_isolation_fails_connect_time_routing_behind_transaction_mode(
        raw: dict[str, Any]) -> None:
    raw["database"]["postgres"]["pooler"] = "none"
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_from_mapping(raw, "<test none>"))
    try:
        results = verify_isolation(manager, only=["pooler"]).results
    finally:
        TenantDatabaseManager.reset()
    assert [r.status for r in results] == [Status.FAIL]
    assert "pgbouncer_transaction" in (results[0].remedy or "")


def test_pools_report_shows_pgbouncer(manager: TenantDatabaseManager,
                                      pg_database: str) -> None:
    for tenant in ("p1", "p2", "p3"):
        with manager.tenant_transaction(tenant) as session:
            session.execute(text("SELECT 1"))
    report = build_report(manager)
    assert report.pooler is not None
    assert report.pooler.pool_mode == "transaction"
    assert report.pooler.default_pool_size == 2
    ours = report.pooler.pools_of(pg_database)
    assert ours and all(p.server_active + p.server_idle <= 2 for p in ours)
    assert report.capacity is not None and report.capacity.worst_case == 2  # not 3 x (2+1)
    shown = render_pool_report(manager)
    assert "behind PgBouncer at most 2 server connections" in shown
    assert f"pgbouncer {report.pooler.target}: pool_mode transaction" in shown
    data = json.loads(render_pool_report(manager, "json"))
    assert data["pooler"]["default_pool_size"] == 2


def test_pools_report_shows_pgbouncer_stats(manager: TenantDatabaseManager,
                                            pg_database: str) -> None:
    before = bouncer_stats(manager, pg_database)
    for n in range(30):
        with manager.tenant_transaction(f"s{n % 3}") as session:
            session.execute(text("SELECT pg_sleep(0.002)"))
    time.sleep(2.5)  # two stats periods: the transactions are in SHOW STATS
    report = build_report(manager)
    assert report.pooler is not None
    stats = report.pooler.stats_of(pg_database)
    assert stats is not None
    assert stats.transactions >= before.transactions + 30
    # The time of the new transactions alone: each slept 2 ms inside.
    spent = (stats.mean_transaction_us * stats.transactions
             - before.mean_transaction_us * before.transactions)
    assert spent / (stats.transactions - before.transactions) >= 1900
    shown = render_pool_report(manager)
    head, row = next((line, shown.splitlines()[i + 2]) for i, line in
                     enumerate(shown.splitlines()) if line.startswith("database ")
                     and "transactions" in line)
    assert row.split()[0] == pg_database
    assert int(row.split()[head.split().index("transactions")]) == stats.transactions
    data = json.loads(render_pool_report(manager, "json"))
    assert data["pooler"]["stats"][pg_database]["total_xact_count"] == stats.transactions


def bouncer_stats(manager: TenantDatabaseManager, database: str) -> BouncerStats:
    assert manager.settings.pooler.admin is not None
    found = read_bouncer(manager.settings.pooler.admin).stats_of(database)
    return found or BouncerStats(database, 0, 0, 0, 0, 0, 0, 0)


def test_close_idle_explains_that_pgbouncer_owns_server_connections(
        config_file: Path) -> None:
    code, out = cli(config_file, "pools", "close-idle", "--idle-for", "1s", "--dry-run")
    assert code != 0
    assert "PgBouncer owns the server connections" in out
