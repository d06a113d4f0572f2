"""Pool report and close-idle against real PostgreSQL and SQLite."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import PG_HOST, PG_PORT, PG_USER
from json_support import json_data
from sqlalchemy import text

from docex_ops.backends.base import ServerLimits
from docex_ops.cli import main
from docex_ops.config.settings import PoolSettings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.pools import build_report, parse_duration, render_pool_report
from docex_ops.pools.capacity import assess_capacity


def _pid(conn: Any) -> int:
    return int(conn.connection.dbapi_connection.get_backend_pid())


def _alive(pg_conn: Any, pids: list[int]) -> set[int]:
    with pg_conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
        return {row[0] for row in cur.fetchall()}


def _probe(database: str, name: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database,
                            application_name=name)
    conn.autocommit = True
    return conn


def _cli(config_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.output


def _json(config_file: Path, *args: str) -> tuple[int, Any, str]:
    """(exit code, the envelope's data, stderr)."""
    result = CliRunner().invoke(main, ["--config", str(config_file), "--format", "json", *args])
    return result.exit_code, json_data(result.stdout), result.stderr


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "10m", "1h30m", "0.5s")] == \
        [90, 90, 600, 5400, 0.5]
    for bad in ("", "ten", "5d", "m"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(bad)


def test_capacity_warns_and_recommends() -> None:
    limits = ServerLimits(100, 3)
    pool = PoolSettings(pool_size=5, max_overflow=10)
    fits = assess_capacity(pool, 6, 87, "derived", limits)
    assert (fits.worst_case, fits.exceeds, fits.warnings) == (90, False, [])
    ten = assess_capacity(pool, 10, 87, "derived", limits)
    assert (ten.worst_case, ten.exceeds, ten.recommended_budget) == (150, True, 87)
    assert (ten.recommended_pool_size, ten.recommended_max_overflow) == (5, 3)
    assert "set database.pool_size: 5 and max_overflow: 3" in ten.warnings[0]
    many = assess_capacity(pool, 300, None, "derived", limits)
    assert (many.recommended_pool_size, many.recommended_max_overflow) == (1, 0)
    assert "cannot all hold a connection" in many.warnings[0]
    over = assess_capacity(pool, 1, 500, "configured", limits)
    assert "max_total_connections is 500" in over.warnings[0]


@pytest.mark.parametrize("kind", ["postgresql"])
def test_report_counts_known_connections(manager: TenantDatabaseManager, pg_conn: Any,
                                         pg_database: str) -> None:
    tag = f"r{uuid.uuid4().hex[:6]}"
    busy, quiet = f"{tag}busy", f"{tag}quiet"
    with manager.get_tenant_engine(quiet).connect() as conn:
        conn.execute(text("SELECT 1"))               # back in the pool: idle
    in_tx = manager.get_tenant_engine(busy).connect()
    in_tx.execute(text("SELECT 1"))                  # autobegun, not committed
    idle = manager.get_tenant_engine(busy).connect()
    idle.execute(text("SELECT 1"))
    idle.commit()
    probe = _probe(pg_database, f"probe-{tag}")
    try:
        report = build_report(manager)
        rows = {t.tenant_id: t for t in report.tenants}
        b, q = rows[busy], rows[quiet]
        assert (b.total, b.active, b.idle, b.idle_in_transaction, b.other) == (2, 0, 1, 1, 0)
        assert (b.process_open, b.process_checked_out, b.known) == (2, 2, True)
        assert (q.total, q.idle, q.idle_in_transaction, q.process_open) == (1, 1, 0, 1)
        assert b.oldest_s is not None and b.longest_idle_in_transaction_s is not None
        assert [o.pid for o in report.other_connections
                if o.application_name == f"probe-{tag}"] == [probe.get_backend_pid()]
        assert not any(o.application_name.startswith(f"docex:{tag}")
                       for o in report.other_connections)
        with pg_conn.cursor() as cur:
            cur.execute("SHOW max_connections")
            assert report.server is not None
            assert report.server.max_connections == int(cur.fetchone()[0])
        assert report.server.tenant_connections >= 3
        assert (report.capacity.tenants, report.capacity.worst_case) == (2, 30)
        assert report.capacity.exceeds is False and report.process["open"] == 3
        table = render_pool_report(manager)
        assert busy in table and f"probe-{tag}" in table
        assert json.loads(render_pool_report(manager, "json"))["capacity"]["tenants"] == 2
    finally:
        in_tx.close()
        idle.close()
        probe.close()


@pytest.mark.parametrize("kind", ["sqlite"])
def test_sqlite_report_files_wal_and_holders(manager: TenantDatabaseManager) -> None:
    import os
    import sqlite3
    from contextlib import closing

    manager.provision("walled")
    with closing(sqlite3.connect(manager.backend.location("walled"))) as raw:
        raw.execute("PRAGMA journal_mode=WAL")   # persistent: a property of the file
    with manager.get_tenant_engine("walled").connect() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (x integer)")
        conn.exec_driver_sql("INSERT INTO scratch VALUES (1)")
        conn.commit()
        manager.provision("closed")
        report = build_report(manager)
    files = {f.tenant_id: f for f in report.files}
    assert sorted(files) == ["closed", "walled"]
    assert files["walled"].wal_bytes > 0 and files["closed"].wal_bytes == 0
    assert files["walled"].size_bytes > 0
    assert any(h.startswith(f"{os.getpid()} ") for h in files["walled"].holders)
    assert files["closed"].holders == []
    assert [(t.tenant_id, t.process_open) for t in report.tenants] == [("walled", 1)]


def test_cli_report_json_and_watch(config_file: Path) -> None:
    assert _cli(config_file, "tenants", "provision", "one", "two")[0] == 0
    code, data, err = _json(config_file, "pools", "report")
    assert code == 0, err
    assert data["capacity"]["tenants"] == 2
    code, out = _cli(config_file, "pools", "report", "--watch", "0.5", "--count", "2")
    assert code == 0 and out.count("capacity: 2 tenants") == 2


@pytest.mark.parametrize("kind", ["sqlite"])
def test_close_idle_refused_on_sqlite(config_file: Path) -> None:
    code, out = _cli(config_file, "pools", "close-idle", "--idle-for", "1m")
    assert code == 2 and "SQLite has no server" in out


@pytest.mark.parametrize("kind", ["postgresql"])
def test_close_idle_terminates_exactly_the_idle_ones(
        manager: TenantDatabaseManager, config_file: Path, pg_conn: Any,
        pg_database: str) -> None:
    threshold = 3.0
    tag = f"c{uuid.uuid4().hex[:6]}"
    old_idle = manager.get_tenant_engine(f"{tag}old").connect()
    old_idle.execute(text("SELECT 1"))
    old_idle.commit()
    old_in_tx = manager.get_tenant_engine(f"{tag}tx").connect()
    old_in_tx.execute(text("SELECT 1"))
    with pg_conn.cursor() as cur:                     # makes the next one wait: active
        cur.execute("SELECT pg_advisory_lock(7007)")
    busy = manager.get_tenant_engine(f"{tag}busy").connect()
    waiter = threading.Thread(
        target=lambda: busy.execute(text("SELECT pg_advisory_lock(7007)")))
    waiter.start()
    not_docex = _probe(pg_database, f"app-{tag}")
    other_db = _probe("postgres", f"docex:{tag}old")
    time.sleep(threshold + 0.5)
    fresh = manager.get_tenant_engine(f"{tag}fresh").connect()
    fresh.execute(text("SELECT 1"))
    fresh.commit()
    expected = sorted([_pid(old_idle), _pid(old_in_tx)])
    survivors = [_pid(busy), _pid(fresh), not_docex.get_backend_pid(), other_db.get_backend_pid()]
    mine = [f"--tenant={tag}{s}" for s in ("old", "tx", "busy", "fresh")]
    try:
        code, listed, err = _json(config_file, "pools", "close-idle",
                                  "--idle-for", f"{threshold}s", "--dry-run", *mine)
        assert code == 0, err
        assert sorted(r["pid"] for r in listed["connections"]) == expected
        assert _alive(pg_conn, expected) == set(expected)      # dry run: untouched
        code, done, err = _json(config_file, "pools", "close-idle",
                                "--idle-for", f"{threshold}s", *mine)
        assert code == 0, err
        assert f"terminating pid {expected[0]}" in err
        # One audit line per termination, on stderr (no audit file, not a terminal).
        audited = [json.loads(x) for x in err.splitlines() if x.startswith('{"time"')]
        assert sorted(x["detail"]["pid"] for x in audited) == expected
        assert sorted(t["pid"] for t in done["terminated"]) == expected
        assert {t["server"] for t in done["terminated"]} == {None}  # one server
        deadline = time.monotonic() + 10
        while _alive(pg_conn, expected) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(pg_conn, expected) == set()
        assert _alive(pg_conn, survivors) == set(survivors)
    finally:
        with pg_conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(7007)")
        waiter.join()
        for conn in (busy, fresh, old_idle, old_in_tx):
            conn.invalidate() if conn in (old_idle, old_in_tx) else conn.close()
        not_docex.close()
        other_db.close()
