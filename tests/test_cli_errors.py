"""The error boundary: every expected failure is one line and the documented exit code
(2 usage/configuration/connection, 1 operation failure, 130 Ctrl-C), never a traceback;
a genuine bug shows its traceback and asks to be reported."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from docex_ops.cli import main
from docex_ops.cli.common import DocexGroup

DOCEX_OPS = [sys.executable, "-m", "docex_ops.cli"]


def _free_port() -> int:
    """A port nobody listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_config(tmp_path: Path, port: int, user: str = "postgres") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("database:\n  type: postgresql\n  postgres:\n    host: 127.0.0.1\n"
                    f"    port: {port}\n    user: {user}\n    database: postgres\n")
    return path


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


UNREACHABLE_COMMANDS = [
    ["tenants", "list"], ["migrate", "status"], ["migrate", "upgrade"], ["migrate", "runs"],
    ["backup", "create", "--all", "--dest", "{tmp}/bk"], ["verify-isolation"],
    ["pools", "report"], ["tenants", "show", "t1"], ["tenants", "drop", "t1", "t2", "--yes"],
]


@pytest.mark.parametrize("args", UNREACHABLE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_unreachable_server_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    port = _free_port()
    config = _pg_config(tmp_path, port)
    argv = ["--config", str(config), *[a.replace("{tmp}", str(tmp_path)) for a in args]]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = _errors(result.output)
    assert len(errors) == 1, result.output
    assert "cannot connect to the database" in errors[0]
    assert f"port {port}" in errors[0] and str(config) in errors[0]


def test_unreachable_server_in_a_real_process(tmp_path: Path) -> None:
    config = _pg_config(tmp_path, _free_port())
    done = subprocess.run([*DOCEX_OPS, "--config", str(config), "migrate", "status"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("Error: cannot connect to the database")


def test_bad_credentials_exit_2(tmp_path: Path) -> None:
    config = _pg_config(tmp_path, int(os.environ.get("DOCEX_TEST_PGPORT", "5432")),
                        user="no_such_role_i16")
    result = CliRunner().invoke(main, ["--config", str(config), "tenants", "list"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    (error,) = _errors(result.output)
    assert "no_such_role_i16" in error and "cannot connect" in error


def test_verbose_adds_the_cause(tmp_path: Path) -> None:
    config = _pg_config(tmp_path, _free_port())
    result = CliRunner().invoke(main, ["-v", "--config", str(config), "tenants", "list"])
    assert result.exit_code == 2
    assert "cause: sqlalchemy.exc.OperationalError" in result.output
    assert "cause: psycopg2.OperationalError" in result.output
    assert "Traceback" not in result.output


def test_bad_database_url_is_a_config_error_without_the_password() -> None:
    env = {**os.environ, "DOCEX_DATABASE_URL": "postgresql://u:s3cret@h:notaport/db"}
    done = subprocess.run([*DOCEX_OPS, "tenants", "list"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr
    (error,) = _errors(done.stderr)
    assert "$DOCEX_DATABASE_URL" in error and "postgresql://u:***@h:notaport/db" in error


def test_ctrl_c_exits_130_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  type: sqlite\n  sqlite:\n    path_template: "
                      f"{tmp_path}/storage/tenant_{{tenant_id}}/docex.db\n")
    proc = subprocess.Popen([*DOCEX_OPS, "--config", str(config), "pools", "report",
                             "--watch", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # SIGINT only once the command runs (the first report is on stdout), not at import.
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err


def test_unknown_tenant_and_revision_exit_2(config_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config_file), "tenants", "provision",
                                "t1"]).exit_code == 0
    result = runner.invoke(main, ["--config", str(config_file), "backup", "create",
                                  "--tenant", "nosuch", "--dest", str(tmp_path / "bk")])
    assert result.exit_code == 2, result.output
    (error,) = _errors(result.output)
    assert "'nosuch'" in error and "do not exist" in error
    assert not (tmp_path / "bk").exists()  # nothing was backed up
    result = runner.invoke(main, ["--config", str(config_file), "migrate", "upgrade",
                                  "9999_nope"])
    assert result.exit_code == 2, result.output
    assert "blocked" not in result.output  # one line, not a row per tenant
    (error,) = _errors(result.output)
    assert "'9999_nope' is unknown" in error and "migrate history" in error


def _group_raising(exc: BaseException) -> click.Group:
    group = DocexGroup("docex-ops")

    @group.command("boom")
    def boom() -> None:
        raise exc

    return group


def test_a_genuine_bug_shows_its_traceback_and_asks_for_a_report() -> None:
    result = CliRunner().invoke(_group_raising(ZeroDivisionError("oops")), ["boom"])
    assert result.exit_code == 1
    assert "Traceback" in result.output and "ZeroDivisionError: oops" in result.output
    assert "this is a bug in docex-ops" in result.output and "report it" in result.output


def test_multi_line_failures_become_one_line() -> None:
    result = CliRunner().invoke(_group_raising(RuntimeError("first\nsecond")), ["boom"])
    assert result.exit_code == 1
    assert _errors(result.output) == ["Error: first; second"]
