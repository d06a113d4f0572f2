"""Exit codes of the typos an operator makes: one line on stderr naming the object, exit 2,
no traceback, nothing half-printed on stdout (issue 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from json_support import envelope
from split_data import make_sqlite_source

from docex_ops.cli import main


def _invoke(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def _one_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _config(tmp_path: Path, settings_factory: object) -> Path:
    from docs_support import write_config

    return write_config(settings_factory("sqlite"), tmp_path / "config.yaml")  # type: ignore[operator]


def test_backup_create_of_an_unknown_tenant(tmp_path: Path, settings_factory: object) -> None:
    config = _config(tmp_path, settings_factory)
    assert _invoke(config, "tenants", "provision", "a")[0] == 0
    code, out, err = _invoke(config, "backup", "create", "--tenant", "nosuch",
                             "--dest", str(tmp_path / "bk"))
    assert code == 2
    assert "'nosuch'" in _one_error(err) and "not exist" in err
    assert out == ""  # no table of one FAILED row: nothing was attempted
    code, out, err = _invoke(config, "--format", "json", "backup", "create", "--tenant",
                             "nosuch", "--dest", str(tmp_path / "bk"))
    failed = envelope(out, "backup create")
    assert code == 2 and failed["ok"] is False and "'nosuch'" in failed["error"]


def test_upgrade_to_an_unknown_revision(tmp_path: Path, settings_factory: object) -> None:
    config = _config(tmp_path, settings_factory)
    assert _invoke(config, "tenants", "provision", "a", "b", "c")[0] == 0
    code, out, err = _invoke(config, "migrate", "upgrade", "9999_nope")
    assert code == 2
    line = _one_error(err)
    assert "'9999_nope'" in line and "unknown" in line and "migrate history" in line
    assert out == ""  # not a "blocked" row per tenant


def test_hostile_tenant_in_a_split_mapping(tmp_path: Path, settings_factory: object) -> None:
    config = _config(tmp_path, settings_factory)
    source = make_sqlite_source(tmp_path / "single.db")
    for name, text, hostile in (
            ("m.yaml", 'baskets:\n  "basket one": "../evil"\n', "../evil"),
            ("m.csv", "basket,tenant\nbas_b2,Robert'); DROP TABLE x;--\n",
             "Robert'); DROP TABLE x;--"),
            ("d.yaml", "default_tenant: pg_catalog\nbaskets: {}\n", "pg_catalog")):
        mapping = tmp_path / name
        mapping.write_text(text)
        for command in ("plan", "run", "verify"):
            code, out, err = _invoke(config, "split", command, "--source", str(source),
                                     "--mapping", str(mapping))
            assert code == 2, (name, command, out, err)
            line = _one_error(err)
            assert str(mapping) in line and "tenant id" in line, line
            assert repr(hostile) in line, line
    assert not (tmp_path / "storage").exists()  # nothing was created for any of them


def test_unknown_revision_in_a_real_process(tmp_path: Path, settings_factory: object) -> None:
    config = _config(tmp_path, settings_factory)
    done = subprocess.run([sys.executable, "-m", "docex_ops.cli", "--config", str(config),
                           "migrate", "upgrade", "9999_nope"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "'9999_nope'" in _one_error(done.stderr)
