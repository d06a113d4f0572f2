"""Config validation through the CLI: unknown keys in docex-ops' sections with a "did you
mean", templates checked at load, file and line in every message, the no-config notice
and `config check` (passwords masked, where each value came from)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from json_support import json_data

from docex_ops.cli import main

CASES = [
    ("database:\n  pool_sise: 3\n", "2", "database.pool_sise: unknown key; did you mean "
                                          "'pool_size'?"),
    ("database:\n  type: postgresql\n  postgres:\n    hots: x\n", "4",
     "database.postgres.hots: unknown key; did you mean 'host'?"),
    ("database:\n  postgres:\n    shema_template: x\n", "3",
     "did you mean 'schema_template'?"),
    ("databse:\n  type: sqlite\n", "1", "databse: unknown top-level section; did you mean "
                                        "'database'?"),
    ("database:\n  postgres:\n    schema_template: pg_{tenant_id}\n", "3",
     "database.postgres.schema_template: invalid value 'pg_{tenant_id}'"),
    ("database:\n  pool_size: [1\n", "3", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "line", "message"), CASES, ids=[c[2][:24] for c in CASES])
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, line: str,
                                            message: str) -> None:
    config = tmp_path / "docex.yaml"
    config.write_text(text)
    result = CliRunner().invoke(main, ["--config", str(config), "tenants", "list"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"Error: {config}:{line}")
    assert message in errors[0]


def test_docex_own_keys_and_sections_are_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "docex.yaml"
    config.write_text("database:\n  type: sqlite\n  echo: true\n  sqlite:\n"
                      f"    path_template: {tmp_path}/st/tenant_{{tenant_id}}/docex.db\n"
                      "  postgres:\n    schema: docex\napp:\n  name: DocEX\n"
                      "multi_tenancy:\n  enabled: false\n")
    result = CliRunner().invoke(main, ["--config", str(config), "tenants", "list"])
    assert result.exit_code == 0, result.output


def test_no_config_says_which_default_it_uses(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOCEX_CONFIG", "DOCEX_DATABASE_URL")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "docex_ops.cli", "tenants", "list"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "note: no config file" in done.stderr
    assert f"SQLite under {tmp_path.resolve()}/storage" in done.stderr
    quiet = subprocess.run([sys.executable, "-m", "docex_ops.cli", "-q", "tenants", "list"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert "note: no config file" not in quiet.stderr


def test_config_check_masks_passwords_and_names_sources(tmp_path: Path) -> None:
    config = tmp_path / "docex.yaml"
    config.write_text("database:\n  type: postgresql\n  pool_size: 3\n  postgres:\n"
                      "    password: hunter2\n    port: 5433\n")
    result = CliRunner().invoke(main, ["--config", str(config), "--format", "json", "config",
                                       "check"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    rows = {r["key"]: r for r in json_data(result.stdout)["settings"]}
    assert rows["database.pool_size"] == {"key": "database.pool_size", "value": 3,
                                          "source": f"{config}:3"}
    assert rows["database.postgres.password"]["value"] == "********"
    assert rows["database.postgres.port"]["source"] == f"{config}:6"
    assert rows["database.max_overflow"]["source"] == "default"


def test_config_check_refuses_a_bad_file(tmp_path: Path) -> None:
    config = tmp_path / "docex.yaml"
    config.write_text("database:\n  pool_sise: 3\n")
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"])
    assert result.exit_code == 2
    assert f"{config}:2: database.pool_sise" in result.output
