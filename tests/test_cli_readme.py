"""The README's command summary matches the tool: every command group and every option it
names exists (on that group's commands, or globally)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from docex_ops.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def _summary() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = text.split("## Commands", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _options(command: click.Command, ctx: click.Context) -> set[str]:
    found = {opt for param in command.params if isinstance(param, click.Option)
             for opt in param.opts + param.secondary_opts}
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found |= _options(sub, ctx)
    return found


def test_every_command_and_option_in_the_readme_exists() -> None:
    ctx = click.Context(main)
    global_options = _options(click.Command("x", params=main.params), ctx) | {"-h", "--help"}
    lines = _summary()
    assert lines[0].startswith("docex-ops")
    group: click.Command = main
    checked = 0
    for line in lines[1:]:
        first = line.split()[0]
        if not line.startswith("        ") and first in main.list_commands(ctx):
            command = main.get_command(ctx, first)
            assert command is not None, first
            group = command
            if isinstance(group, click.Group):  # each subcommand the line names exists
                for word in re.findall(r"(?:^|\| )\s*([a-z][a-z-]+)", line.split(None, 1)[1]
                                       if " " in line.strip() else ""):
                    if word in ("or",):
                        continue
                    assert word in group.list_commands(ctx), f"{first} {word}"
        allowed = _options(group, ctx) | global_options
        for option in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", line):
            assert option in allowed, f"README names {option} on `{line.strip()}`"
            checked += 1
    assert checked > 30


def test_every_relative_link_resolves_inside_the_repository() -> None:
    """A fresh clone holds only the repository: a link out of it (../) is a dead link."""
    root = Path(__file__).resolve().parents[1]
    dead = []
    for doc in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(root) or not resolved.exists():
                dead.append(f"{doc.relative_to(root)}: {target}")
    assert not dead, dead
