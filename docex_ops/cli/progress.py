"""Progress of a command that walks many tenants, and its one-line summary.

On a terminal (stderr), a rich bar: count, the tenant just finished, rate and time
left. While it is live, anything else written to stderr (notes, audit lines with
--audit-stderr) goes through rich's console, which prints it above the bar and
redraws the bar below: the two never interleave. When stderr is not a terminal,
nothing is written while the command runs; at the end, one line::

    backup create: 33 tenants, 33 ok, 0 failed in 4.1s

``-q`` hides the bar and that line, except when something failed.

Usage at a call site (the operation takes a ``ProgressFn``)::

    with TenantProgress() as bar:
        results = ops.provision_tenants(manager, ids, progress=bar)
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

import click

from docex_ops import audit_trail
from docex_ops.cli.common import state
from docex_ops.executor import ProgressTick

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def _new_bar(noun: str) -> Progress:
    """The bar's columns. rich is imported here, when a terminal will show it: a run in
    CI or cron never pays for loading it."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Tenants (archives, checks) per second, as rich measures it."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} {noun}/s",
                        style="progress.data.speed")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[tenant]}"), RateColumn(), TimeRemainingColumn(),
                    console=Console(file=sys.stderr), redirect_stdout=False)


class TenantProgress:
    """A ``ProgressFn`` (call it with each tick) that is also the bar's lifetime."""

    def __init__(self, noun: str = "tenants", command: str | None = None,
                 summary: bool = True) -> None:
        """``summary`` False: the command prints a summary of its own (migrate's run line)."""
        self.noun = noun
        self.show_summary = summary
        self.command = command or _command_name()
        self.quiet = state().quiet
        self.total = 0
        self.ok = 0
        self.failed = 0
        self._started = time.monotonic()
        self._bar: Progress | None = None
        self._log_streams: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
        self._task: TaskID | None = None

    def __enter__(self) -> TenantProgress:
        self._started = time.monotonic()
        if not self.quiet and sys.stderr.isatty():
            self._bar = _new_bar(self.noun)
            real = sys.stderr
            self._bar.start()
            self._log_streams = _log_through(real, sys.stderr)  # rich's proxy while live
            console = self._bar.console
            # Whole lines above the bar: a wrapped JSON line could not be copied or parsed.
            audit_trail.write_stderr_through(lambda line: console.print(
                line, markup=False, highlight=False, soft_wrap=True))
            self._task = self._bar.add_task(self.command, total=None, tenant="")
        return self

    def __call__(self, tick: ProgressTick) -> None:
        self.total = tick.total
        if tick.tenant is None:  # the walk's size, before anything finished
            pass
        elif tick.ok:
            self.ok += 1
        else:
            self.failed += 1
        if self._bar is not None and self._task is not None:
            mark = "" if tick.ok else " FAILED"
            self._bar.update(self._task, completed=tick.done, total=tick.total,
                             tenant=f"{tick.tenant or ''}{mark}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._bar is not None:
            audit_trail.write_stderr_through(None)
            for handler, stream in self._log_streams:
                handler.setStream(stream)
            self._bar.stop()
        if kind is None:  # an error is the command's own one line, not a summary
            self.summary()

    def summary(self) -> None:
        """The final line: printed unless nothing ran, or -q and nothing failed."""
        if (not self.show_summary or self.ok + self.failed == 0
                or (self.quiet and not self.failed)):
            return
        seconds = time.monotonic() - self._started
        left = self.total - self.ok - self.failed
        click.echo(f"{self.command}: {self.total} {self.noun}, {self.ok} ok, "
                   f"{self.failed} failed" + (f", {left} not started" if left > 0 else "")
                   + f" in {seconds:.1f}s", err=True)


def _log_through(real: TextIO, proxy: TextIO
                 ) -> list[tuple[logging.StreamHandler[TextIO], TextIO]]:
    """Point the log handlers writing to the real stderr (logging.basicConfig kept it) at
    ``proxy``, so a warning during a walk prints above the bar too; returns what to undo."""
    swapped: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is real:
            swapped.append((handler, real))
            handler.setStream(proxy)
    return swapped


def _command_name() -> str:
    """``backup create``: the command's path below the program name."""
    names = []
    ctx: click.Context | None = click.get_current_context()
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))
