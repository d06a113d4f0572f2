"""The runner under failure: bad data, SIGKILL, two runners, application locks."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from migration_helpers import HEAD, cli, cli_json, scripts_with, spawn
from sqlalchemy import func, insert, select

from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import RunStore
from docex_ops.schema.head import docbasket, document

UNIQUE_NAMES = {"0004_unique_names": 'op.create_index("uq_document_name", "document", '
                                     '["name"], unique=True)  # fast'
                                     '  # lint: allow index-not-concurrent: fails on purpose'}
SLOW_NOTE = {"0004_slow_note": 'time.sleep(0.4)\n'
                               'op.add_column("document", sa.Column("note", sa.Text()))'}
FAST_NOTE = {"0004_note": 'op.add_column("document", sa.Column("note", sa.Text()))  # fast'}


def add_document(manager: TenantDatabaseManager, tenant: str, name: str) -> None:
    now = dt.datetime(2026, 1, 1)
    basket = f"bas_{uuid.uuid4().hex}"
    with manager.tenant_transaction(tenant) as session:
        session.execute(insert(docbasket).values(id=basket, name=basket, storage_config={},
                                                 status="active", created_at=now,
                                                 updated_at=now))
        session.execute(insert(document).values(
            id=f"doc_{uuid.uuid4().hex}", basket_id=basket, name=name, source="s", path="p",
            document_type="file", checksum="c", status="new", processing_attempts=0,
            created_at=now, updated_at=now))


def documents(manager: TenantDatabaseManager, tenant: str) -> int:
    with manager.backend.tenant_connection(tenant) as conn:
        return int(conn.execute(select(func.count()).select_from(document)).scalar_one())


@pytest.fixture
def tenants(manager: TenantDatabaseManager) -> Iterator[list[str]]:
    ids = ["t1", "t2", "t3", "t4"]
    for tenant in ids:
        manager.provision(tenant)
    manager.close_all_connections()
    yield ids


def test_failing_tenant_rolled_back_others_follow_policy(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path,
        tmp_path: Path) -> None:
    scripts = str(scripts_with(tmp_path, UNIQUE_NAMES))
    add_document(manager, "t2", "same")
    add_document(manager, "t2", "same")
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade")
    assert code == 1
    status = {r["tenant"]: r["status"] for r in report["tenants"]}
    assert status == {"t1": "done", "t2": "failed", "t3": "not started", "t4": "not started"}
    error = next(r["error"] for r in report["tenants"] if r["tenant"] == "t2")
    assert "IntegrityError" in error or "UNIQUE" in error.upper()
    assert manager.backend.read_revisions(tenants) == {
        "t1": "0004_unique_names", "t2": HEAD, "t3": HEAD, "t4": HEAD}
    assert documents(manager, "t2") == 2
    # resume goes on past the failure when asked to
    code, report2 = cli_json(config_file, "migrate", "--scripts", scripts, "resume",
                             report["run_id"], "--continue-on-error")
    assert code == 1
    assert {r["tenant"]: r["status"] for r in report2["tenants"]} == \
        {"t2": "failed", "t3": "done", "t4": "done"}
    runs = RunStore(manager.backend.control_engine()).get(report["run_id"])[1]
    assert {r["tenant_id"]: r["status"] for r in runs} == \
        {"t1": "done", "t2": "failed", "t3": "done", "t4": "done"}


def test_canary_failure_stops_the_rest(manager: TenantDatabaseManager, tenants: list[str],
                                       config_file: Path, tmp_path: Path) -> None:
    scripts = str(scripts_with(tmp_path, UNIQUE_NAMES))
    add_document(manager, "t1", "dup")
    add_document(manager, "t1", "dup")
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--canary", "1", "--continue-on-error", "-j", "2")
    assert code == 1
    assert {r["tenant"]: r["status"] for r in report["tenants"]} == \
        {"t1": "failed", "t2": "not started", "t3": "not started", "t4": "not started"}


def test_status_check_dry_run_and_parallel_upgrade(tenants: list[str], config_file: Path,
                                                   tmp_path: Path,
                                                   manager: TenantDatabaseManager) -> None:
    scripts = str(scripts_with(tmp_path, FAST_NOTE))
    assert cli(config_file, "migrate", "--scripts", scripts, "status", "--check")[0] == 1
    code, plan = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade", "--dry-run")
    assert code == 0 and len(plan["steps"]) == 4
    assert set(manager.backend.read_revisions(tenants).values()) == {HEAD}
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade", "-j", "3",
                            "--exclude", "t4")
    assert code == 0 and {r["status"] for r in report["tenants"]} == {"done"}
    assert manager.backend.read_revisions(["t4"]) == {"t4": HEAD}
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade")
    assert code == 0 and [r["tenant"] for r in report["tenants"]] == ["t4"]
    assert cli(config_file, "migrate", "--scripts", scripts, "status", "--check")[0] == 0
    code, noop = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade")
    assert code == 0 and noop["tenants"] == [] and noop["already_at_target"] == 4


def _columns(manager: TenantDatabaseManager, tenant: str) -> set[str]:
    return {c[0] for c in manager.backend.catalog(tenant)["document"]["columns"]}


def test_sigkill_leaves_every_tenant_whole_and_resume_completes(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path,
        tmp_path: Path) -> None:
    scripts = str(scripts_with(tmp_path, SLOW_NOTE))
    proc = spawn(config_file, "migrate", "--scripts", scripts, "upgrade")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "0004_slow_note" in manager.backend.read_revisions(tenants).values():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    revisions = manager.backend.read_revisions(tenants)
    assert set(revisions.values()) == {HEAD, "0004_slow_note"}  # killed mid-run
    for tenant, revision in revisions.items():
        assert ("note" in _columns(manager, tenant)) == (revision == "0004_slow_note")
    runs = RunStore(manager.backend.control_engine()).list()
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "resume",
                            runs[0].run_id)
    assert code == 0, report
    assert set(manager.backend.read_revisions(tenants).values()) == {"0004_slow_note"}
    assert all("note" in _columns(manager, t) for t in tenants)


def test_two_runners_never_migrate_a_tenant_twice(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path,
        tmp_path: Path) -> None:
    scripts = str(scripts_with(tmp_path, SLOW_NOTE))
    first = spawn(config_file, "migrate", "--scripts", scripts, "upgrade")
    store = RunStore(manager.backend.control_engine())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(r.status == "running" for r in store.list()):
        time.sleep(0.05)
    code, out = cli(config_file, "migrate", "--scripts", scripts, "upgrade")
    assert code == 1 and "holds" in out and "--wait" in out
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade", "--wait")
    assert first.wait(60) == 0
    assert code == 0, report
    assert {r["status"] for r in report["tenants"]} <= {"skipped"}
    done: dict[str, int] = {}
    for run in store.list():
        for row in store.get(run.run_id)[1]:
            done[row["tenant_id"]] = done.get(row["tenant_id"], 0) + (row["status"] == "done")
    assert done == {t: 1 for t in tenants}


def _hold_application_lock(settings: Settings, manager: TenantDatabaseManager,
                           request: Any) -> Any:
    if settings.db_type == "postgresql":
        conn = request.getfixturevalue("pg_conn")
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute(f'SELECT count(*) FROM "{manager.backend.location("t3")}".document')
        return conn
    conn = sqlite3.connect(manager.backend.location("t3"), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_lock_timeout_fails_the_locked_tenant_only(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path, tmp_path: Path,
        settings: Settings, request: Any) -> None:
    scripts = str(scripts_with(tmp_path, FAST_NOTE))
    holder = _hold_application_lock(settings, manager, request)
    try:
        started = time.monotonic()
        code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                                "--lock-timeout", "0.5", "--continue-on-error")
        assert time.monotonic() - started < 20
    finally:
        holder.rollback()
    assert code == 1
    status = {r["tenant"]: r["status"] for r in report["tenants"]}
    assert status == {"t1": "done", "t2": "done", "t3": "failed", "t4": "done"}
    error = next(r["error"] for r in report["tenants"] if r["tenant"] == "t3")
    assert "lock" in error.lower()
    assert manager.backend.read_revisions(["t3"]) == {"t3": HEAD}


def test_fast_path_step_is_one_transaction(manager: TenantDatabaseManager, tenants: list[str],
                                           config_file: Path, tmp_path: Path) -> None:
    """A later statement failing undoes the earlier ones of the same step."""
    scripts = str(scripts_with(tmp_path, {"0004_half": (
        'op.add_column("document", sa.Column("note", sa.Text()))  # fast\n'
        'op.create_index("uq_document_name", "document", ["name"], unique=True)'
        '  # lint: allow index-not-concurrent: fails on purpose')}))
    add_document(manager, "t1", "twin")
    add_document(manager, "t1", "twin")
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--tenant", "t1", "--tenant", "t2")
    assert code == 1
    assert {r["tenant"]: r["status"] for r in report["tenants"]} == \
        {"t1": "failed", "t2": "not started"}
    assert "note" not in _columns(manager, "t1")
    assert manager.backend.read_revisions(["t1"]) == {"t1": HEAD}
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--tenant", "t2")
    assert code == 0 and report["tenants"][0]["status"] == "done"
    assert "note" in _columns(manager, "t2")


def test_each_migrated_tenant_is_audited(manager: TenantDatabaseManager, tenants: list[str],
                                         settings: Settings, tmp_path: Path) -> None:
    from dataclasses import replace

    from docs_support import write_config

    audit_file = tmp_path / "audit.jsonl"
    config = write_config(replace(settings, audit_file=audit_file), tmp_path / "audited.yaml")
    scripts = str(scripts_with(tmp_path, FAST_NOTE))
    code, _ = cli_json(config, "migrate", "--scripts", scripts, "upgrade", "--exclude", "t4")
    assert code == 0
    code, events = cli_json(config, "audit", "tail", "-n", "10")
    migrated = {e["tenant"]: e for e in events["events"] if e["action"] == "tenant.migrate"}
    assert sorted(migrated) == ["t1", "t2", "t3"]
    assert {e["outcome"] for e in migrated.values()} == {"ok"}
    assert migrated["t1"]["target"] == "0004_note" and migrated["t1"]["detail"]["from"] == HEAD
