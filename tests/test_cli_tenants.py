"""`docex-ops tenants ...` end to end through click's CliRunner, on both backends."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from json_support import json_data

from docex_ops.cli import main
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket


def _run(config_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.output


def test_provision_list_idempotent(config_file: Path) -> None:
    code, out = _run(config_file, "tenants", "provision", "a", "b", "c", "--verify",
                     "--jobs", "3")
    assert code == 0, out
    assert out.count("created") == 3
    code, out = _run(config_file, "tenants", "list", "--format", "json")
    assert code == 0
    listed = json_data(out)["tenants"]
    assert [(t["tenant"], t["state"], t["tables"]) for t in listed] == \
        [(x, "versioned", 11) for x in "abc"]
    assert {t["revision"] for t in listed} == {"0003_object_paths"}
    result = CliRunner().invoke(main, ["--config", str(config_file), "--format", "json",
                                       "tenants", "provision", "a", "b", "c"])
    assert result.exit_code == 0
    assert [r["action"] for r in json_data(result.stdout)["tenants"]] == ["exists"] * 3
    assert result.stderr.startswith("tenants provision: 3 tenants, 3 ok, 0 failed in ")
    _, again = _run(config_file, "tenants", "list", "--format", "json")
    assert json_data(again)["tenants"] == listed


def test_show_and_drop(config_file: Path, tmp_path: Path) -> None:
    assert _run(config_file, "tenants", "provision", "keep", "full")[0] == 0
    TenantDatabaseManager.reset()
    import datetime as dt

    from docex_ops.config.settings import load_settings

    manager = TenantDatabaseManager(load_settings(config_file))
    now = dt.datetime(2026, 1, 1)
    with manager.tenant_transaction("full") as session:
        session.execute(docbasket.insert().values(id="bas_1", name="n", storage_config={},
                                                  status="active", created_at=now,
                                                  updated_at=now))
    TenantDatabaseManager.reset()
    code, out = _run(config_file, "--format", "json", "tenants", "show", "full")
    assert code == 0 and json_data(out)["rows"]["docbasket"] == 1

    code, out = _run(config_file, "tenants", "drop", "keep")
    assert code == 2 and "--yes" in out
    code, out = _run(config_file, "tenants", "drop", "keep", "--dry-run")
    assert code == 0 and "would drop" in out
    assert _run(config_file, "tenants", "drop", "missing", "--yes")[0] == 2
    code, out = _run(config_file, "tenants", "drop", "full", "--yes")
    assert code == 1 and "holds rows (docbasket 1 row)" in out
    assert _run(config_file, "tenants", "drop", "keep", "--yes")[0] == 0
    code, out = _run(config_file, "tenants", "drop", "full", "--yes", "--force",
                     "--safety-dir", str(tmp_path / "safety"))
    assert code == 0 and f"backed it up first to {tmp_path / 'safety'}" in out
    _, out = _run(config_file, "--format", "json", "tenants", "list")
    assert json_data(out)["tenants"] == []


def test_help_explains() -> None:
    result = CliRunner().invoke(main, ["tenants", "provision", "--help"])
    assert result.exit_code == 0 and "Idempotent" in result.output
