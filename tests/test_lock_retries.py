"""Lock retries: a tenant locked by another connection is retried with backoff, each
attempt its own transaction; the one that keeps failing names the blocking pid."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from migration_helpers import HEAD, cli_json, scripts_with

from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, RunOptions, RunStore, Selection, StepOptions
from docex_ops.migrate.plan import make_plan
from docex_ops.migrate.retry import backoff
from docex_ops.migrate.runner import run_plan

FAST_NOTE = {"0004_note": 'op.add_column("document", sa.Column("note", sa.Text()))  # fast'}


@pytest.fixture
def postgres(settings_factory: Any) -> Settings:
    return settings_factory("postgresql")  # type: ignore[no-any-return]


@pytest.fixture
def pg_manager(postgres: Settings) -> Any:
    manager = TenantDatabaseManager(postgres)
    for tenant in ("t1", "t2"):
        manager.provision(tenant)
    manager.close_all_connections()
    yield manager
    manager.close_all_connections()
    TenantDatabaseManager.reset()


def _hold(pg_conn: Any, manager: TenantDatabaseManager, tenant: str) -> int:
    """Another connection reading the tenant's table in an open transaction: its
    ACCESS SHARE lock blocks the migration's ALTER TABLE."""
    pg_conn.autocommit = False
    with pg_conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{manager.backend.location(tenant)}".document')
    return int(pg_conn.get_backend_pid())


def test_backoff_doubles_with_jitter() -> None:
    assert [backoff(n, lambda a, b: b) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff(1, lambda a, b: a) == 0.25
    assert backoff(20, lambda a, b: b) == 30.0


def test_locked_for_3s_migrated_on_the_third_try(
        pg_manager: TenantDatabaseManager, pg_conn: Any, tmp_path: Path) -> None:
    scripts = MigrationScripts(scripts_with(tmp_path, FAST_NOTE))
    plan = make_plan(pg_manager, scripts, Selection(include=("t1",)), "upgrade", "head")
    _hold(pg_conn, pg_manager, "t1")
    release = threading.Timer(3.0, pg_conn.rollback)
    release.start()
    try:
        report = run_plan(pg_manager, scripts, plan, RunOptions(
            step=StepOptions(lock_timeout=1.0, lock_retries=5)))
    finally:
        release.join()
    [result] = report.results
    assert result.status == "done" and result.attempts == 3, result
    assert report.run_id is not None
    store = RunStore(pg_manager.backend.control_engine())
    assert store.attempts(report.run_id) == {"t1": 3}


def test_failing_after_retries_names_the_blocking_pid(
        pg_manager: TenantDatabaseManager, pg_conn: Any, postgres: Settings,
        tmp_path: Path) -> None:
    scripts = str(scripts_with(tmp_path, FAST_NOTE))
    pid = _hold(pg_conn, pg_manager, "t2")
    try:
        started = time.monotonic()
        report = run_plan(pg_manager, MigrationScripts(Path(scripts)),
                          make_plan(pg_manager, MigrationScripts(Path(scripts)),
                                    Selection(), "upgrade", "head"),
                          RunOptions(step=StepOptions(lock_timeout=0.3, lock_retries=2),
                                     continue_on_error=True))
        assert time.monotonic() - started < 15
    finally:
        pg_conn.rollback()
    by_tenant = {r.tenant_id: r for r in report.results}
    assert by_tenant["t1"].status == "done" and by_tenant["t1"].attempts == 1
    failed = by_tenant["t2"]
    assert failed.status == "failed" and failed.attempts == 3
    assert "after 3 attempts" in str(failed.error)
    assert f"pid {pid}" in str(failed.error) and "SELECT count(*)" in str(failed.error)
    assert pg_manager.backend.read_revisions(["t2"]) == {"t2": HEAD}


# PostgreSQL only: a SQLite lock is the busy timeout, covered by the runner tests.
@pytest.mark.parametrize("kind", ["postgresql"])
def test_cli_shows_attempts(manager: TenantDatabaseManager, kind: str, config_file: Path,
                            tmp_path: Path, pg_database: str, request: Any) -> None:
    for tenant in ("t1", "t2"):
        manager.provision(tenant)
    manager.close_all_connections()
    pg_conn = request.getfixturevalue("pg_conn")
    pid = _hold(pg_conn, manager, "t2")
    try:
        code, report = cli_json(config_file, "migrate", "--scripts",
                                str(scripts_with(tmp_path, FAST_NOTE)), "upgrade",
                                "--lock-timeout", "0.3", "--lock-retries", "1",
                                "--continue-on-error")
    finally:
        pg_conn.rollback()
    assert code == 1
    rows = {r["tenant"]: r for r in report["tenants"]}
    assert rows["t2"]["attempts"] == 2 and f"pid {pid}" in rows["t2"]["error"]
    assert rows["t1"]["attempts"] == 1 and rows["t1"]["status"] == "done"
