"""The option vocabulary every command shares: one duration type, one --jobs rule."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from docex_ops.config.values import parse_duration

F = TypeVar("F", bound=Callable[..., Any])

# One cap for every --jobs: more workers than this only queue on the connection budget.
MAX_JOBS = 64


class Duration(click.ParamType[float]):
    """A duration as PostgreSQL writes it (500ms, 5s, 10min, 1h; a bare number is
    seconds), on every time option; ``minimum`` in seconds."""

    name = "duration"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds < self.minimum:
            self.fail(f"{value!r} is below the minimum of {self.minimum:g}s", param, ctx)
        return seconds


def jobs_option(help_text: str, default: int = 1) -> Callable[[F], F]:
    """``--jobs/-j`` with the one cap rule (1..MAX_JOBS)."""
    return click.option("--jobs", "-j", type=click.IntRange(1, MAX_JOBS), default=default,
                        show_default=True, help=help_text)


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--tenant (repeatable), --exclude (repeatable), --tenants-file: one ``selection``."""
    @click.option("--tenant", "include", multiple=True, help="Only this tenant (repeatable).")
    @click.option("--exclude", multiple=True, help="Leave this tenant out (repeatable).")
    @click.option("--tenants-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="File with one tenant id per line (# comments allowed).")
    @functools.wraps(func)
    def wrapper(include: tuple[str, ...], exclude: tuple[str, ...],
                tenants_file: Path | None, **kwargs: Any) -> Any:
        from docex_ops.migrate.plan import Selection  # loaded only when a command runs

        return func(selection=Selection(include, exclude, tenants_file), **kwargs)
    return wrapper


def example(command_line: str) -> str:
    """A command's --help epilog: one example, kept on its own line (click's \\b)."""
    return f"\b\nExample:\n  {command_line}"
