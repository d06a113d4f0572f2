"""`docex-ops verify-isolation` and `tenants provision --with-role` through click."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from json_support import json_data

from docex_ops.cli import main


def _run(config_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.stdout  # the summary line goes to stderr


def test_exit_codes_and_json(config_file: Path, kind: str) -> None:
    assert _run(config_file, "tenants", "provision", "a", "b")[0] == 0
    code, out = _run(config_file, "verify-isolation", "--format", "json")
    assert code == 0, out
    payload = json_data(out, "verify-isolation")
    assert payload["tenants_checked"] == 2 and payload["counts"]["FAIL"] == 0
    assert {r["tenant"] for r in payload["results"]} >= {"a", "b"}
    assert _run(config_file, "verify-isolation", "--tenant", "A;x")[0] == 2
    assert _run(config_file, "verify-isolation", "--tenant", "ghost")[0] == 2


@pytest.mark.parametrize("kind", ["postgresql"])  # planted with PostgreSQL DDL
def test_warn_threshold_and_fail(config_file: Path, pg_conn: Any) -> None:
    assert _run(config_file, "tenants", "provision", "a", "b")[0] == 0
    _, out = _run(config_file, "--format", "json", "tenants", "list")
    a, b = (t["location"] for t in json_data(out)["tenants"])
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {a}.extra (x int)")
    assert _run(config_file, "verify-isolation")[0] == 0
    code, out = _run(config_file, "verify-isolation", "--fail-on", "warn")
    assert code == 1 and f"{a}.extra" in out
    # Only contents: without tenant roles the live probe's "not proven" is a WARN of its own.
    assert _run(config_file, "verify-isolation", "--fail-on", "warn", "--allow", "extra",
                "--check", "contents")[0] == 0
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE VIEW {a}.peek AS SELECT * FROM {b}.docbasket")
    code, out = _run(config_file, "verify-isolation", "--format", "json", "--check", "references")
    assert code == 1
    rows = json_data(out)["results"]
    assert [(r["tenant"], r["status"]) for r in rows if r["status"] != "PASS"] == [("a", "FAIL")]


def test_help_explains() -> None:
    result = CliRunner().invoke(main, ["verify-isolation", "--help"])
    assert result.exit_code == 0 and "canary" in result.output and "--fail-on" in result.output


@pytest.mark.parametrize("kind", ["postgresql"])
def test_provision_with_role(config_file: Path, pg_conn: Any) -> None:
    tenant = f"r{uuid.uuid4().hex[:10]}"  # roles are cluster-wide: never reuse a name
    role = f"docex_t_{tenant}"
    try:
        code, out = _run(config_file, "--format", "json", "tenants", "provision", tenant,
                         "--with-role")
        assert code == 0 and json_data(out)["tenants"][0]["role"] == role
        code, out = _run(config_file, "--format", "json", "verify-isolation",
                         "--check", "privileges", "--check", "readers")
        rows = json_data(out)["results"]
        assert code == 0
        assert any(r["check"] == "readers" and f"owner {role}" in r["detail"] for r in rows)
    finally:
        with pg_conn.cursor() as cur:
            cur.execute(f"DROP OWNED BY {role} CASCADE; DROP ROLE IF EXISTS {role}")


def test_with_role_refused_on_sqlite(settings_factory: Any, tmp_path: Path) -> None:
    import yaml

    settings = settings_factory("sqlite")
    config = tmp_path / "sqlite.yaml"
    config.write_text(yaml.safe_dump({"database": {
        "type": "sqlite", "sqlite": {"path_template": settings.sqlite.path_template}}}))
    code, _ = _run(config, "tenants", "provision", "a", "--with-role")
    assert code == 2
