"""One audit trail: every entry point that changes a tenant writes one line to the file.

CLI provision, drop, migrate upgrade, backup restore, split run, pools close-idle and
plain `alembic upgrade head` (a subprocess, as the README documents it), each against
a real database; the stderr rule (--audit-stderr) on a configured file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from docs_support import with_files, write_config
from json_support import json_data
from migration_helpers import HEAD
from split_data import MAPPING, make_sqlite_source
from sqlalchemy import text

from docex_ops import audit_trail
from docex_ops.cli import main
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager

REPO = Path(__file__).resolve().parents[1]
ACTOR = "dba-audit"


@pytest.fixture
def audited(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """A config file whose audit trail lives in tmp_path."""
    TenantDatabaseManager.reset()
    path = write_config(with_files(settings, tmp_path), tmp_path / "config.yaml")
    yield path
    TenantDatabaseManager.reset()
    audit_trail.set_actor(None)
    audit_trail.configure(None)


def _cli(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config), "--actor", ACTOR, *args])


def _lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _without_time(line: dict[str, Any]) -> dict[str, Any]:
    assert line["time"].endswith("Z")
    return {k: v for k, v in line.items() if k != "time"}


def _stderr_audit(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stderr.splitlines() if x.startswith('{"time"')]


def _location(settings: Settings, tenant_id: str) -> str:
    from docex_ops.backends import make_backend

    backend = make_backend(settings)
    try:
        return backend.location(tenant_id)
    finally:
        backend.dispose()


def test_provision_and_drop_are_one_line_each(audited: Path, tmp_path: Path,
                                              settings: Settings) -> None:
    result = _cli(audited, "tenants", "provision", "acme")
    assert result.exit_code == 0, result.output
    where = _location(settings, "acme")
    assert [_without_time(x) for x in _lines(tmp_path)] == [
        {"operator": ACTOR, "tenant": "acme", "action": "tenant.provision", "target": where,
         "outcome": "ok", "detail": {"trigger": "explicit", "revision": HEAD}}]
    assert _stderr_audit(result.stderr) == []  # a configured file: not on stderr

    result = _cli(audited, "--audit-stderr", "tenants", "drop", "acme", "--yes")
    assert result.exit_code == 0, result.output
    drop = _without_time(_lines(tmp_path)[-1])
    assert (drop["tenant"], drop["action"], drop["target"], drop["outcome"]) == (
        "acme", "tenant.drop", where, "ok")
    assert len(_lines(tmp_path)) == 2
    assert [_without_time(x) for x in _stderr_audit(result.stderr)] == [drop]


def test_migrate_upgrade_is_audited(audited: Path, tmp_path: Path) -> None:
    assert _cli(audited, "tenants", "provision", "acme").exit_code == 0
    down = _cli(audited, "migrate", "downgrade", "0002_docex_2_9_9", "--tenant", "acme",
                "--force")
    assert down.exit_code == 0, down.output
    result = _cli(audited, "--format", "json", "migrate", "upgrade", "--tenant", "acme")
    assert result.exit_code == 0, result.output
    line = _without_time(_lines(tmp_path)[-1])
    run_id = line["detail"]["run_id"]
    assert line == {"operator": ACTOR, "tenant": "acme", "action": "tenant.migrate",
                    "target": HEAD, "outcome": "ok",
                    "detail": {"action": "upgrade", "from": "0002_docex_2_9_9",
                               "run_id": run_id, "path": line["detail"]["path"],
                               "error": None, "attempts": 1, "safety_backup": None}}
    assert len(_lines(tmp_path)) == 3  # provision, downgrade, upgrade


def test_backup_restore_is_audited(audited: Path, tmp_path: Path, settings: Settings) -> None:
    assert _cli(audited, "tenants", "provision", "acme").exit_code == 0
    dest = tmp_path / "backups"
    made = _cli(audited, "--format", "json", "backup", "create", "--tenant", "acme",
                "--dest", str(dest))
    assert made.exit_code == 0, made.output
    archive = json_data(made.stdout)["backups"][0]["archive"]
    result = _cli(audited, "backup", "restore", archive, "--as", "copy")
    assert result.exit_code == 0, result.output
    line = _without_time(_lines(tmp_path)[-1])
    assert (line["tenant"], line["action"], line["target"], line["outcome"],
            line["operator"]) == ("copy", "tenant.restore", _location(settings, "copy"), "ok",
                                  ACTOR)
    assert [x["action"] for x in _lines(tmp_path)] == ["tenant.provision", "tenant.restore"]


@pytest.mark.parametrize("kind", ["sqlite"])
@pytest.mark.parametrize("target_config", [False, True], ids=["own-config", "target-config"])
def test_split_run_writes_its_lines_to_the_file(audited: Path, tmp_path: Path,
                                                settings: Settings, target_config: bool) -> None:
    """With --target-config (a DocEX config that names no audit file), the lines still go
    to the audit file of the command's own --config."""
    source = make_sqlite_source(tmp_path / "single.db")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    target = ["--target-config", str(write_config(settings, tmp_path / "target.yaml"))
              ] if target_config else []
    result = _cli(audited, "split", "run", "--source", str(source), "--mapping", str(mapping),
                  "--unmapped", "skip", "--cross-tenant-edges", "drop", *target)
    assert result.exit_code == 0, result.output
    lines = [_without_time(x) for x in _lines(tmp_path)]
    assert sorted((x["tenant"], x["action"], x["target"], x["outcome"], x["operator"])
                  for x in lines) == [
        ("acme", "tenant.split", _location(settings, "acme"), "ok", ACTOR),
        ("globex", "tenant.split", _location(settings, "globex"), "ok", ACTOR)]
    assert all(x["detail"]["source"] and x["detail"]["rows"] > 0 for x in lines)
    assert _stderr_audit(result.stderr) == []


@pytest.mark.parametrize("kind", ["postgresql"])
def test_close_idle_terminations_are_audited(audited: Path, tmp_path: Path,
                                             settings: Settings) -> None:
    tag = f"i{uuid.uuid4().hex[:6]}"
    manager = TenantDatabaseManager(settings)
    idle = manager.get_tenant_engine(tag).connect()
    idle.execute(text("SELECT 1"))
    idle.commit()
    pid = int(idle.connection.dbapi_connection.get_backend_pid())  # type: ignore[union-attr]
    time.sleep(1.5)
    try:
        TenantDatabaseManager.reset()
        result = _cli(audited, "pools", "close-idle", "--idle-for", "1s", "--tenant", tag)
        assert result.exit_code == 0, result.output
    finally:
        idle.invalidate()
    lines = [_without_time(x) for x in _lines(tmp_path)]
    assert len(lines) == 1
    line = lines[0]
    assert (line["operator"], line["tenant"], line["action"], line["target"],
            line["outcome"]) == (ACTOR, tag, "tenant.close_idle", f"pid {pid}", "ok")
    assert line["detail"]["pid"] == pid and line["detail"]["idle_s"] >= 1.0
    assert line["detail"]["state"] == "idle"


def _alembic(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"),
               "-x", f"config={config}", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, DOCEX_OPS_ACTOR=ACTOR))


def test_plain_alembic_upgrade_is_audited_and_recorded(audited: Path, tmp_path: Path) -> None:
    for tenant in ("acme", "globex"):
        assert _cli(audited, "tenants", "provision", tenant).exit_code == 0
    down = _alembic(audited, "-x", "tenant=acme", "-x", "force=1", "downgrade",
                    "0002_docex_2_9_9")
    assert down.returncode == 0, down.stderr
    up = _alembic(audited, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert '{"time"' not in up.stderr  # a configured file only

    lines = [_without_time(x) for x in _lines(tmp_path)][2:]
    assert [(x["tenant"], x["action"], x["target"], x["outcome"]) for x in lines] == [
        ("acme", "tenant.migrate", "0002_docex_2_9_9", "ok"),
        ("acme", "tenant.migrate", HEAD, "ok")]  # globex was at head: no line
    down_line, up_line = lines
    assert down_line["operator"] == ACTOR
    assert down_line["detail"]["action"] == "downgrade" and down_line["detail"]["from"] == HEAD
    assert up_line["detail"]["action"] == "upgrade"
    assert up_line["detail"]["from"] == "0002_docex_2_9_9"
    assert up_line["detail"]["path"] == "alembic"

    runs = _cli(audited, "--format", "json", "migrate", "runs")
    assert runs.exit_code == 0, runs.output
    recorded = json_data(runs.stdout)["runs"]
    by_id = {r["run_id"]: r for r in recorded}
    upgrade = by_id[up_line["detail"]["run_id"]]
    assert (upgrade["action"], upgrade["target"], upgrade["actor"], upgrade["status"]) == (
        "upgrade", "head", ACTOR, "done")
    assert upgrade["counts"] == {"done": 1, "skipped": 1}
    downgrade = by_id[down_line["detail"]["run_id"]]
    assert (downgrade["action"], downgrade["target"], downgrade["counts"]) == (
        "downgrade", "0002_docex_2_9_9", {"done": 1})


def test_plain_alembic_with_nothing_to_do_records_no_run(audited: Path, tmp_path: Path) -> None:
    assert _cli(audited, "tenants", "provision", "acme").exit_code == 0
    up = _alembic(audited, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert [x["action"] for x in _lines(tmp_path)] == ["tenant.provision"]
    runs = _cli(audited, "--format", "json", "migrate", "runs")
    assert runs.exit_code == 0 and json_data(runs.stdout)["runs"] == []


def test_plain_alembic_failure_is_audited_and_resumable(audited: Path, tmp_path: Path) -> None:
    """A refused step (data-losing downgrade without force=1): a failed line, a failed run
    whose unvisited tenants are pending, for `migrate resume`."""
    for tenant in ("acme", "globex"):
        assert _cli(audited, "tenants", "provision", tenant).exit_code == 0
    down = _alembic(audited, "-x", "tenant=acme,globex", "downgrade", "0002_docex_2_9_9")
    assert down.returncode != 0 and "--force" in down.stdout + down.stderr  # FAILED: line
    line = _without_time(_lines(tmp_path)[-1])
    assert (line["tenant"], line["action"], line["target"], line["outcome"]) == (
        "acme", "tenant.migrate", "0002_docex_2_9_9", "failed")
    assert line["detail"]["action"] == "downgrade" and "force" in line["detail"]["error"]
    runs = json_data(_cli(audited, "--format", "json", "migrate", "runs").stdout)["runs"]
    assert [(r["action"], r["status"], r["counts"]) for r in runs] == [
        ("downgrade", "failed", {"failed": 1, "pending": 1})]
