"""The whole click tree of docex-ops, for tests that check every command."""

from __future__ import annotations

import click

from docex_ops.cli import main


def command_tree() -> list[tuple[str, click.Command]]:
    """(path, command) for the root ("") and every group and command under it."""
    found: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        found.append((" ".join(path), command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
    walk(main, [])
    return found


def leaf_commands() -> list[tuple[str, click.Command]]:
    """Every command that runs: a plain command, or a group that runs on its own too
    (``metrics`` prints, ``metrics serve`` serves)."""
    return [(path, cmd) for path, cmd in command_tree()
            if not isinstance(cmd, click.Group) or (path and cmd.invoke_without_command)]
