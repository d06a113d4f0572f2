"""One option vocabulary, checked over the whole click tree: every command's --help has an
example naming the command, every option has help text, every time option takes durations
as PostgreSQL writes them, every --jobs has the one cap (issue 16)."""

from __future__ import annotations

import click
import pytest
from cli_tree import command_tree, leaf_commands
from click.testing import CliRunner

from docex_ops.cli import main
from docex_ops.cli.options import MAX_JOBS, Duration

# Words that make an option a time option: it must then take a Duration.
TIME_WORDS = ("timeout", "pause", "watch", "idle", "interval", "delay", "every", "age")


COMMANDS = command_tree()
LEAVES = leaf_commands()


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[p for p, _ in LEAVES])
def test_every_command_help_has_an_example_naming_it(path: str, command: click.Command) -> None:
    result = CliRunner().invoke(main, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().startswith("Example")]
    assert starts, f"{path}: no Example in --help"
    example = " ".join(line.strip() for line in lines[starts[0]:starts[0] + 3])
    assert f"docex-ops {path}" in example or (
        "docex-ops " in example and f" {path}" in example), f"{path}: {example}"


def test_every_option_has_help_text() -> None:
    missing = [f"{path or 'docex-ops'} {'/'.join(p.opts)}" for path, command in COMMANDS
               for p in command.params
               if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not missing, f"options without help: {missing}"


def _time_options() -> list[tuple[str, click.Option]]:
    return [(f"{path} {p.opts[-1]}", p) for path, command in COMMANDS for p in command.params
            if isinstance(p, click.Option) and not p.is_flag
            and any(w in o for o in p.opts for w in TIME_WORDS)]


def test_every_time_option_takes_durations() -> None:
    options = _time_options()
    names = {n.split()[-1] for n, _ in options}
    assert {"--lock-timeout", "--statement-timeout", "--wave-pause", "--watch",
            "--idle-for"} <= names, names
    for name, option in options:
        assert isinstance(option.type, Duration), f"{name} is {option.type!r}, not a Duration"
        parsed = [option.type.convert(v, option, None)
                  for v in ("500ms", "5s", "10min", "1h", "30")]
        assert parsed == [0.5, 5.0, 600.0, 3600.0, 30.0], name


def test_a_time_option_refuses_nonsense_in_one_line() -> None:
    result = CliRunner().invoke(main, ["--lock-timeout", "5 parsecs", "tenants", "list"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--lock-timeout" in result.output


def test_every_jobs_option_has_the_one_cap() -> None:
    jobs = [(path, p) for path, command in COMMANDS for p in command.params
            if isinstance(p, click.Option) and "--jobs" in p.opts]
    assert {path for path, _ in jobs} >= {"tenants provision", "backup create", "split run",
                                          "migrate upgrade", "migrate resume"}
    for path, option in jobs:
        assert "-j" in option.opts, path
        assert isinstance(option.type, click.IntRange), path
        assert (option.type.min, option.type.max) == (1, MAX_JOBS), path


SELECTING = ["migrate status", "migrate upgrade", "migrate downgrade", "migrate stamp",
             "migrate adopt", "migrate check", "backup create", "verify-isolation",
             "pools close-idle", "audit tail", "backup verify"]


@pytest.mark.parametrize("path", SELECTING)
def test_commands_that_select_tenants_share_the_options(path: str) -> None:
    command = dict(COMMANDS)[path]
    options = {o: p for p in command.params if isinstance(p, click.Option) for o in p.opts}
    assert {"--tenant", "--exclude", "--tenants-file"} <= set(options), path
    assert options["--tenant"].multiple and options["--exclude"].multiple, path
