"""scripts/ci-migrate.sh: the exit code a pipeline can trust, the report, the backup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from json_support import envelope, json_data
from migration_helpers import HEAD, scripts_with

from docex_ops.manager.tenant_manager import TenantDatabaseManager

REPO = Path(__file__).resolve().parent.parent


def _ci(config_file: Path, tmp_path: Path, scripts: Path, **env: str
        ) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    environment = dict(os.environ, DOCEX_CONFIG=str(config_file), SCRIPTS_DIR=str(scripts),
                       REPORT=str(tmp_path / "report.json"), CANARY="1", JOBS="2",
                       PATH=f"{bin_dir}:{os.environ['PATH']}", **env)
    return subprocess.run(["bash", str(REPO / "scripts" / "ci-migrate.sh")], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["sqlite"])
def test_ci_step_backs_up_migrates_and_reports(manager: TenantDatabaseManager,
                                               config_file: Path, tmp_path: Path) -> None:
    for tenant in ("a", "b", "c"):
        manager.provision(tenant)
    scripts = scripts_with(tmp_path, {"0004_note": 'op.add_column("document", '
                                                   'sa.Column("note", sa.Text()))  # fast'})
    result = _ci(config_file, tmp_path, scripts, BACKUP_DIR=str(tmp_path / "bk"))
    assert result.returncode == 0, result.stderr
    report = envelope((tmp_path / "report.json").read_text(), "migrate upgrade")
    assert report["ok"] and report["data"]["ok"]
    assert sorted(r["tenant"] for r in report["data"]["tenants"]) == ["a", "b", "c"]
    manifests = list((tmp_path / "bk").rglob("*.json"))
    assert len(manifests) == 3
    assert set(manager.backend.read_revisions(["a", "b", "c"]).values()) == {"0004_note"}
    again = _ci(config_file, tmp_path, scripts)
    assert again.returncode == 0 and json_data((tmp_path / "report.json").read_text())[
        "tenants"] == []


@pytest.mark.parametrize("kind", ["sqlite"])
def test_ci_step_fails_the_pipeline_on_a_failed_canary(manager: TenantDatabaseManager,
                                                       config_file: Path,
                                                       tmp_path: Path) -> None:
    for tenant in ("a", "b"):
        manager.provision(tenant)
    scripts = scripts_with(tmp_path, {"0004_boom": 'raise RuntimeError("boom")'})
    result = _ci(config_file, tmp_path, scripts)
    assert result.returncode == 1
    report = envelope((tmp_path / "report.json").read_text(), "migrate upgrade")
    assert report["ok"] is False and report["error"].startswith("migration incomplete")
    assert {r["tenant"]: r["status"] for r in report["data"]["tenants"]} == \
        {"a": "failed", "b": "not started"}
    assert set(manager.backend.read_revisions(["a", "b"]).values()) == {HEAD}
