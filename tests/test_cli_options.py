"""One option vocabulary: durations as PostgreSQL writes them on every time option, and
--jobs/-j with one cap wherever a command works on tenants in parallel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from json_support import json_data

from docex_ops.cli import main
from docex_ops.cli.options import MAX_JOBS, Duration

TIME_OPTIONS = ("lock_timeout", "statement_timeout", "watch", "idle_for")


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(main)

    def walk(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            yield f"{prefix}{name}", command
            if isinstance(command, click.Group):
                yield from walk(command, f"{prefix}{name} ")

    yield "", main
    yield from walk(main, "")


def test_every_time_option_takes_a_duration() -> None:
    seen = 0
    for name, command in _commands():
        for param in command.params:
            if param.name in TIME_OPTIONS:
                assert isinstance(param.type, Duration), f"{name} --{param.name}"
                seen += 1
    assert seen >= 5  # global --lock-timeout, migrate's two, pools' two


def test_every_jobs_option_is_dash_j_with_one_cap() -> None:
    seen = []
    for name, command in _commands():
        for param in command.params:
            if param.name == "jobs":
                assert isinstance(param, click.Option) and "-j" in param.opts, name
                assert isinstance(param.type, click.IntRange)
                assert (param.type.min, param.type.max) == (1, MAX_JOBS), name
                seen.append(name)
    assert {"tenants provision", "backup create", "migrate upgrade", "split run"} <= set(seen)


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("5s", 5.0), ("10min", 600.0),
                                               ("1h", 3600.0), ("7", 7.0), ("10m", 600.0),
                                               ("1h30min", 5400.0)])
def test_duration_option_accepts_postgresql_units(text: str, seconds: float) -> None:
    @click.command()
    @click.option("--wait", type=Duration())
    def cmd(wait: float) -> None:
        click.echo(repr(wait))

    result = CliRunner().invoke(cmd, ["--wait", text])
    assert result.exit_code == 0 and result.output.strip() == repr(seconds)


def test_bad_durations_are_usage_errors(config_file: Path) -> None:
    for args in (["--lock-timeout", "2 sec"], ["migrate", "upgrade", "--lock-timeout", "soon"],
                 ["pools", "report", "--watch", "10mins"], ["pools", "report", "--watch", "100ms"]):
        result = CliRunner().invoke(main, ["--config", str(config_file), *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_durations_with_units_run(config_file: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(config_file), "--lock-timeout", "2s"]
    result = runner.invoke(main, [*base, "migrate", "upgrade", "--lock-timeout", "500ms",
                                  "--statement-timeout", "1min", "-j", "2", "--dry-run"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, [*base, "pools", "report", "--watch", "1s", "--count", "1"])
    assert result.exit_code == 0, result.output


def test_backup_create_selects_tenants_as_migrate_does(config_file: Path, tmp_path: Path) -> None:

    runner = CliRunner()
    base = ["--config", str(config_file), "--format", "json"]
    assert runner.invoke(main, [*base, "tenants", "provision", "a", "b", "c"]).exit_code == 0
    result = runner.invoke(main, [*base, "backup", "create", "--all", "--exclude", "b",
                                  "--dest", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    assert [r["tenant"] for r in json_data(result.stdout)["backups"]] == ["a", "c"]
    listed = tmp_path / "ids.txt"
    listed.write_text("# nightly\nb\nc  # the big one\n")
    result = runner.invoke(main, [*base, "backup", "create", "--tenants-file", str(listed),
                                  "--tenant", "a", "--exclude", "c", "--dest",
                                  str(tmp_path / "some")])
    assert result.exit_code == 0, result.output
    assert [r["tenant"] for r in json_data(result.stdout)["backups"]] == ["a", "b"]
    result = runner.invoke(main, [*base, "backup", "create", "--all", "--tenant", "a",
                                  "--dest", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not both" in result.output
