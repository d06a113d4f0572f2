"""verify-isolation on real SQLite files: links, sharing, modes, integrity, contents."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from json_support import json_data

from docex_ops.config.settings import Settings
from docex_ops.isolation import CheckResult, Status, verify_isolation
from docex_ops.manager.tenant_manager import TenantDatabaseManager


@pytest.fixture
def sq_manager(settings_factory: Callable[..., Settings]) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    yield TenantDatabaseManager(settings_factory("sqlite"))
    TenantDatabaseManager.reset()


def _provision(manager: TenantDatabaseManager, *tenants: str) -> dict[str, Path]:
    for tenant in tenants:
        assert manager.provision(tenant)
    return {t: Path(manager.backend.location(t)) for t in tenants}


def _has(results: list[CheckResult], check: str, tenant: str, status: Status,
         obj: str, detail: str = "") -> bool:
    return any(r.check == check and r.tenant == tenant and r.status == status
               and obj in r.object and detail in r.detail for r in results)


def test_clean_deployment_of_50_tenants_passes(sq_manager: TenantDatabaseManager) -> None:
    tenants = [f"c{i:02d}" for i in range(50)]
    _provision(sq_manager, *tenants)
    report = verify_isolation(sq_manager)
    assert report.tenants_checked == 50
    assert [r for r in report.results if r.status != Status.PASS] == []
    assert len(report.results) == 50 * 7 + 1  # a row per check per tenant, + leftovers


def test_symlinked_and_hard_linked_files(sq_manager: TenantDatabaseManager) -> None:
    p = _provision(sq_manager, "a", "b", "d", "e")
    p["b"].unlink()
    p["b"].symlink_to(p["a"])          # b's "own" file is a's database
    p["e"].unlink()
    os.link(p["d"], p["e"])            # d and e share one inode
    results = verify_isolation(sq_manager).results
    assert _has(results, "file_location", "b", Status.FAIL, str(p["b"]), f"symlink to {p['a']}")
    assert _has(results, "file_sharing", "a", Status.FAIL, str(p["a"]), "tenant(s) 'b'")
    assert _has(results, "file_sharing", "b", Status.FAIL, str(p["b"]), "tenant(s) 'a'")
    assert _has(results, "file_sharing", "d", Status.FAIL, str(p["d"]), "tenant(s) 'e'")
    assert _has(results, "file_sharing", "e", Status.FAIL, str(p["e"]), "tenant(s) 'd'")
    assert _has(results, "file_location", "a", Status.PASS, "-")


def test_linked_tenant_directory_and_outside_storage(sq_manager: TenantDatabaseManager,
                                                     tmp_path: Path) -> None:
    p = _provision(sq_manager, "a", "b")
    outside = tmp_path / "elsewhere"
    p["b"].parent.rename(outside)
    p["b"].parent.symlink_to(outside)  # the directory, not the file, is the link
    results = verify_isolation(sq_manager, ["b"]).results
    assert _has(results, "file_location", "b", Status.FAIL, str(p["b"]), "a linked directory")
    assert _has(results, "file_location", "b", Status.FAIL, str(p["b"]), "outside the storage")


def test_modes_sidecars_integrity_and_contents(sq_manager: TenantDatabaseManager) -> None:
    p = _provision(sq_manager, "a", "b", "c", "d")
    os.chmod(p["a"], 0o666)
    os.chmod(p["b"], 0o644)
    os.chmod(p["b"].parent, 0o777)
    p["d"].write_bytes(p["d"].read_bytes()[:4096] + b"\0garbage" * 512)
    with closing(sqlite3.connect(p["c"])) as conn:
        conn.execute("CREATE TABLE notes (x)")
        conn.execute("PRAGMA writable_schema=ON")  # how a view naming another file could exist
        conn.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
                     "('view', 'leak', 'leak', 0, 'CREATE VIEW leak AS SELECT * FROM other.x')")
        conn.commit()
    os.link(p["b"], f"{p['c']}-wal")  # a leftover sidecar that is another tenant's file
    results = verify_isolation(sq_manager).results
    assert _has(results, "file_permissions", "a", Status.FAIL, str(p["a"]), "world-writable")
    assert _has(results, "file_permissions", "b", Status.WARN, str(p["b"]), "world-readable")
    assert _has(results, "file_permissions", "b", Status.FAIL, str(p["b"].parent), "directory")
    assert _has(results, "sidecars", "c", Status.FAIL, f"{p['c']}-wal", "with tenant 'b'")
    assert _has(results, "file_sharing", "b", Status.FAIL, str(p["b"]), "2 hard links")
    assert _has(results, "integrity", "d", Status.FAIL, str(p["d"]), "quick_check")
    assert _has(results, "contents", "c", Status.FAIL, str(p["c"]),
                "view leak cannot reference objects in database other")
    assert _has(results, "integrity", "c", Status.FAIL, str(p["c"]), "malformed database schema")


def test_unexpected_objects_and_allow_list(sq_manager: TenantDatabaseManager) -> None:
    p = _provision(sq_manager, "a")
    with closing(sqlite3.connect(p["a"])) as conn:
        conn.execute("CREATE TABLE notes (x)")
        conn.execute("CREATE VIEW recent AS SELECT id FROM docbasket")
        conn.execute("DROP TABLE processors")
        conn.commit()
    results = verify_isolation(sq_manager, only=["contents", "code"]).results
    assert _has(results, "contents", "a", Status.WARN, "table notes", "unexpected table")
    # A view is code DocEX never has: a FAIL of its own (no longer a contents WARN).
    assert _has(results, "code", "a", Status.FAIL, "view recent", "DocEX never has")
    assert not _has(results, "contents", "a", Status.WARN, "view recent")
    assert _has(results, "contents", "a", Status.FAIL, str(p["a"]), "missing: processors")
    allowed = verify_isolation(sq_manager, allow=["notes", "tenant_a.rec*"],
                               only=["contents", "code"])
    assert [r.status for r in allowed.results if r.check == "contents"] == [Status.FAIL]
    assert [(r.status, r.object) for r in allowed.results if r.check == "code"] == \
        [(Status.PASS, "view recent")]


def test_views_and_triggers_in_a_tenant_file_on_50_tenants(sq_manager: TenantDatabaseManager,
                                                           tmp_path: Path) -> None:
    """Planted: exit 1 naming each; removed with the remedy each FAIL carries, run as the
    shell command it is: exit 0."""
    import subprocess

    from click.testing import CliRunner
    from docs_support import write_config

    from docex_ops.cli import main

    p = _provision(sq_manager, *(f"c{i:02d}" for i in range(50)))
    with closing(sqlite3.connect(p["c07"])) as conn:
        conn.execute('CREATE VIEW "odd ""name""" AS SELECT id FROM docbasket')
        conn.execute("CREATE TRIGGER stamp AFTER INSERT ON docbasket BEGIN "
                     "UPDATE docbasket SET status = 'x' WHERE id = new.id; END")
        conn.commit()
    config = write_config(sq_manager.settings, tmp_path / "config.yaml")

    def verify() -> tuple[int, list[dict[str, str]]]:
        result = CliRunner().invoke(main, ["--config", str(config), "--format", "json",
                                           "verify-isolation", "--check", "code"])
        return result.exit_code, json_data(result.stdout)["results"]

    code, rows = verify()
    failed = [r for r in rows if r["status"] == "FAIL"]
    assert code == 1 and {(r["tenant"], r["object"]) for r in failed} == {
        ("c07", 'view odd "name"'), ("c07", "trigger stamp")}
    for row in failed:
        subprocess.run(row["remedy"], shell=True, check=True)
    code, rows = verify()
    assert code == 0 and len(rows) == 50
