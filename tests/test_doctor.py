"""`docex-ops doctor`: PASS/WARN/FAIL rows and the exit codes, against real PostgreSQL, a
real PgBouncer and SQLite files."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from docs_support import write_config
from json_support import json_data
from migration_helpers import cli, cli_json
from pgbouncer_support import free_port, pooled_mapping, start_bouncer, stop_bouncer

from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager


@pytest.fixture(autouse=True)
def own_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The leftovers check also searches the temp folder: this test's own, so scratch
    files other runs on this machine leave behind are not this deployment's."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield


def _doctor(config: Path) -> tuple[int, list[dict[str, Any]]]:
    code, out = cli_json(config, "doctor")
    return code, out["checks"]


def _deployment(kind: str, settings_factory: Any, tmp_path: Path
                ) -> tuple[TenantDatabaseManager, Path, Settings]:
    settings = settings_factory(kind)
    TenantDatabaseManager.reset()
    return (TenantDatabaseManager(settings),
            write_config(settings, tmp_path / f"{kind}.yaml"), settings)


def _shared_cluster_only(row: dict[str, Any]) -> bool:
    """A leftovers WARN naming only roles: roles are cluster-wide, and other test runs on
    this machine's shared server leave theirs; not this deployment's objects."""
    return (row["check"] == "leftovers" and row["status"] == "WARN"
            and all(part.strip().startswith("role ") for part in
                    row["detail"].split(": ", 1)[1].split(";")[0].split(", ")
                    if " more" not in part))


def test_healthy_postgresql_passes_everything(settings_factory: Any, tmp_path: Path) -> None:
    manager, config_file, _ = _deployment("postgresql", settings_factory, tmp_path)
    for tenant_id in ("h1", "h2"):
        manager.provision(tenant_id)
    code, rows = _doctor(config_file)
    assert code == 0, rows
    checks = {r["check"] for r in rows}
    assert {"connectivity", "privileges", "pg_dump_readable", "tools", "connections",
            "leftovers", "revisions", "schemas"} <= checks
    assert [r for r in rows if r["status"] != "PASS" and not _shared_cluster_only(r)] == []
    assert any("all 2 tenant(s) at head" in r["detail"] for r in rows)
    code, out = cli(config_file, "doctor")
    assert code == 0 and "PASS" in out and "FAIL" not in out.split("doctor:")[0], out


def test_sqlite_runs_the_checks_that_apply(settings_factory: Any, tmp_path: Path) -> None:
    manager, config_file, settings = _deployment("sqlite", settings_factory, tmp_path)
    manager.provision("s1")
    code, rows = _doctor(config_file)
    assert code == 0, rows
    assert {r["check"] for r in rows} == {"connectivity", "leftovers", "revisions", "schemas"}
    assert all(r["status"] == "PASS" for r in rows), rows
    root = settings.sqlite.storage_root
    (root / "not-a-dir").write_text("")
    config = tmp_path / "broken.yaml"  # its storage root: a file
    config.write_text(config_file.read_text().replace(str(root), str(root / "not-a-dir")))
    code, rows = _doctor(config)
    assert code == 1 and rows[0]["status"] == "FAIL", rows
    assert rows[0]["detail"] == "storage root is not a directory"
    assert [r["check"] for r in rows] == ["connectivity"]  # nothing else can be read


def test_a_tenant_behind_head_is_a_warn(manager: TenantDatabaseManager, config_file: Path
                                        ) -> None:
    manager.provision("ahead")
    manager.provision("behind")
    code, out = cli(config_file, "migrate", "downgrade", "0002_docex_2_9_9", "--tenant",
                    "behind", "--force")
    assert code == 0, out
    code, rows = _doctor(config_file)
    assert code == 0, rows  # a WARN alone does not fail the preflight
    (warn,) = [r for r in rows if r["check"] == "revisions"]
    assert warn["status"] == "WARN" and "behind at 0002_docex_2_9_9" in warn["detail"]
    assert "ahead" not in warn["detail"]


def test_unreachable_server_is_one_fail_row(pg_database: str, schema_prefix: str,
                                           tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = tmp_path / "down.yaml"
    config.write_text(yaml.safe_dump({
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "postgresql", "postgres": {
            "host": "127.0.0.1", "port": port, "user": "postgres", "database": pg_database,
            "schema_template": schema_prefix + "{tenant_id}"}}}))
    proc = subprocess.run([sys.executable, "-m", "docex_ops.cli", "--config", str(config),
                           "--format", "json", "doctor"], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stdout + proc.stderr
    rows = json_data(proc.stdout, "doctor")["checks"]
    assert len(rows) == 1 and rows[0]["status"] == "FAIL", rows
    assert f"127.0.0.1:{port}" in rows[0]["target"] and "\n" not in rows[0]["detail"]
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: doctor: 1 check(s) failed")


def test_behind_pgbouncer_both_paths(pg_database: str, schema_prefix: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as plain:  # PgBouncer's folder in the usual temp folder:
        plain.setattr(tempfile, "tempdir", None)  # its user cannot enter this test's
        bouncer = start_bouncer()
    try:
        mapping = pooled_mapping(pg_database, bouncer, schema_prefix)
        config = tmp_path / "pooled.yaml"
        config.write_text(yaml.safe_dump(mapping))
        TenantDatabaseManager.reset()
        assert cli(config, "tenants", "provision", "p1")[0] == 0
        code, rows = _doctor(config)
        assert code == 0, rows
        paths = {r["target"]: r for r in rows if r["check"] == "connectivity"}
        direct_port = mapping["database"]["postgres"]["direct"]["port"]
        direct = f"default direct path 127.0.0.1:{direct_port}"
        pooler = f"default pooler path {bouncer.host}:{bouncer.port}"
        assert set(paths) == {direct, pooler}, paths
        assert all(r["status"] == "PASS" for r in paths.values()), paths
        assert "pgbouncer_transaction" in paths[pooler]["detail"]

        wrong = free_port()
        mapping["database"]["postgres"]["direct"]["port"] = wrong
        config.write_text(yaml.safe_dump(mapping))
        TenantDatabaseManager.reset()
        code, rows = _doctor(config)
        assert code == 1, rows
        failed = [r for r in rows if r["status"] == "FAIL"]
        assert [r["target"] for r in failed] == [f"default direct path 127.0.0.1:{wrong}"]
        assert any(r["target"] == pooler and r["status"] == "PASS" for r in rows), rows
    finally:
        TenantDatabaseManager.reset()
        stop_bouncer(bouncer)
