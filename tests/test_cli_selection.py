"""--tenant (repeatable), --exclude and --tenants-file on the commands that gained them:
verify-isolation, audit tail, pools close-idle (issue 16, one option vocabulary)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from json_support import json_data
from sqlalchemy import text

from docex_ops.cli import main
from docex_ops.manager.tenant_manager import TenantDatabaseManager


def _json(config: Path, *args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(main, ["--config", str(config), "--format", "json", *args])
    return result.exit_code, json_data(result.stdout), result.stderr


@pytest.fixture
def audited(tmp_path: Path, settings_factory: Any) -> Path:
    from docs_support import with_files, write_config

    settings = with_files(settings_factory("sqlite"), tmp_path)
    return write_config(settings, tmp_path / "config.yaml")


def test_verify_isolation_excludes_and_reads_a_tenants_file(audited: Path,
                                                            tmp_path: Path) -> None:
    assert _json(audited, "tenants", "provision", "a", "b", "c")[0] == 0
    code, report, err = _json(audited, "verify-isolation", "--exclude", "b")
    assert code == 0, err
    judged = {r["tenant"] for r in report["results"]} - {"*"}
    assert judged == {"a", "c"} and report["tenants_checked"] == 2
    listed = tmp_path / "ids.txt"
    listed.write_text("# only these\nc\n")
    code, report, err = _json(audited, "verify-isolation", "--tenants-file", str(listed),
                              "--tenant", "a")
    assert code == 0 and {r["tenant"] for r in report["results"]} - {"*"} == {"a", "c"}, err
    code, _, err = _json(audited, "verify-isolation", "--exclude", "a", "--exclude", "b",
                         "--exclude", "c")
    assert code == 2 and "every tenant is excluded" in err


def test_audit_tail_takes_several_tenants_and_excludes(audited: Path) -> None:
    assert _json(audited, "tenants", "provision", "a", "b", "c")[0] == 0
    code, data, err = _json(audited, "audit", "tail", "--tenant", "a", "--tenant", "c")
    assert code == 0, err
    assert [e["tenant"] for e in data["events"]] == ["a", "c"]
    code, data, err = _json(audited, "audit", "tail", "--exclude", "b")
    assert [e["tenant"] for e in data["events"]] == ["a", "c"], err
    code, _, err = _json(audited, "audit", "tail", "--tenant", "../x")
    assert code == 2 and "'../x'" in err


@pytest.mark.parametrize("kind", ["postgresql"])
def test_close_idle_excludes(manager: TenantDatabaseManager, config_file: Path) -> None:
    tag = f"x{uuid.uuid4().hex[:6]}"
    held = []
    for name in ("keep", "kill"):
        conn = manager.get_tenant_engine(f"{tag}{name}").connect()
        conn.execute(text("SELECT 1"))
        conn.commit()
        held.append(conn)
    try:
        both = ("--tenant", f"{tag}keep", "--tenant", f"{tag}kill")
        code, data, err = _json(config_file, "pools", "close-idle", "--idle-for", "0",
                                "--dry-run", *both)
        assert code == 0, err
        assert sorted(c["tenant"] for c in data["connections"]) == [f"{tag}keep", f"{tag}kill"]
        code, data, err = _json(config_file, "pools", "close-idle", "--idle-for", "0ms",
                                "--dry-run", *both, "--exclude", f"{tag}keep")
        assert code == 0, err
        assert [c["tenant"] for c in data["connections"]] == [f"{tag}kill"]
    finally:
        for conn in held:
            conn.close()


def test_backup_verify_checks_only_the_selected_tenants(audited: Path, tmp_path: Path) -> None:
    assert _json(audited, "tenants", "provision", "a", "b", "c")[0] == 0
    dest = tmp_path / "bk"
    assert _json(audited, "backup", "create", "--all", "--dest", str(dest))[0] == 0
    code, data, err = _json(audited, "backup", "verify", str(dest), "--tenant", "a",
                            "--tenant", "c")
    assert code == 0, err
    assert [r["tenant"] for r in data["archives"]] == ["a", "c"]
    code, data, err = _json(audited, "backup", "verify", str(dest), "--exclude", "b")
    assert [r["tenant"] for r in data["archives"]] == ["a", "c"], err
    code, _, err = _json(audited, "backup", "verify", str(dest), "--tenant", "nosuch")
    assert code == 2 and "'nosuch'" in err and str(dest) in err
