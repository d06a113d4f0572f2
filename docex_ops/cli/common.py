"""What every command shares: state, error-to-exit-code mapping, output options."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import click

from docex_ops.cli import errors
from docex_ops.cli.errors import OperationFailed as OperationFailed  # re-exported
from docex_ops.cli.errors import UsageProblem as UsageProblem
from docex_ops.cli.output import FORMATS, CommandResult, json_chunks, render_json, render_table
from docex_ops.config.settings import Settings, load_settings

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

F = TypeVar("F", bound=Callable[..., Any])


class DocexGroup(click.Group):
    """Maps our exceptions to exit codes and one clear line on stderr.

    Subcommands may be registered lazily as ``name -> "module:attribute"``, with a
    summary (the first paragraph of the command's help) that ``--help`` lists
    instead of importing every command group.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, str] = {}
        self.lazy_summaries: dict[str, str] = {}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, cmd) for name in self.list_commands(ctx)
                    if (cmd := self._listed(ctx, name)) is not None and not cmd.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit))
                                    for name, cmd in commands])

    def _listed(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command, or a stand-in carrying its summary when it is not loaded yet."""
        if name not in self.commands and name in self.lazy_summaries:
            return click.Command(name, help=self.lazy_summaries[name])
        return self.get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """The error boundary (see cli/errors.py): one line and an exit code; in JSON
        mode also the envelope on stdout, with ok=false and that line."""
        try:
            value = super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own control flow (both subclass RuntimeError)
        except (errors.OperationFailed, errors.UsageProblem) as exc:
            failure = type(exc)(errors.one_line(exc.message))
            _finish(ctx, failure.message)
            raise failure from exc
        except click.ClickException as exc:  # click's usage errors: its message, exit 2
            _finish(ctx, errors.one_line(exc.format_message()), exc)
            raise
        except KeyboardInterrupt:
            _finish(ctx, "interrupted (Ctrl-C)")
            errors.interrupted()
        except Exception as exc:
            cli_state = ctx.obj if isinstance(ctx.obj, CliState) else None
            problem = errors.translate(exc, cli_state.source if cli_state else "the config")
            if problem is None:
                _finish(ctx, f"bug in docex-ops: {errors.one_line(exc)}")
                errors.report_bug(exc)
            if cli_state is not None and cli_state.verbose:
                errors.show_cause(exc)
            _finish(ctx, problem.message)
            raise problem from exc
        _finish(ctx, None)
        return value


def _finish(ctx: click.Context, error: str | None,
            usage: click.ClickException | None = None) -> None:
    """Write the command's envelope (JSON mode) and its --report files, once."""
    cli_state = ctx.obj if isinstance(ctx.obj, CliState) else None
    if cli_state is None or cli_state.result.written:
        return
    result = cli_state.result
    if result.streamed:  # --watch wrote a line per report; a failure ends the stream
        result.written = True
        if error is not None:
            click.echo(render_json(result.document(ok=False, error=error), compact=True))
        return
    if result.command is None:  # failed before the command ran: name it from its args
        failed_ctx = getattr(usage, "ctx", None)
        result.command = (_command_name(failed_ctx) if failed_ctx is not None
                          else _named_command(ctx))
    if error is None and result.command == "":
        return  # no command ran (a bare group): nothing to report
    result.written = True
    document = result.document(ok=error is None, error=error)
    for path in result.files:
        with path.open("w") as report:
            report.writelines(json_chunks(document))
    if cli_state.fmt == "json":
        for piece in json_chunks(document):  # written as made: never the whole text held
            click.echo(piece, nl=False)
        click.echo()


def _command_name(ctx: click.Context) -> str:
    """``tenants list``: the command path without the program's name (which is
    ``python -m docex_ops.cli`` as often as ``docex-ops``)."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def _named_command(ctx: click.Context) -> str:
    """The command the arguments name, walking the groups (options are skipped)."""
    command: click.Command = ctx.command
    names: list[str] = []
    for arg in [*ctx.protected_args, *ctx.args]:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(ctx, arg)
        if sub is not None:
            names.append(arg)
            command = sub
    return " ".join(names)


@dataclass
class CliState:
    config_path: str | None
    fmt: str
    quiet: bool = False
    verbose: int = 0
    lock_timeout: float | None = None  # the global --lock-timeout, over the config's
    result: CommandResult = field(default_factory=CommandResult, repr=False)
    _settings: Settings | None = field(default=None, repr=False)
    _manager: TenantDatabaseManager | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        """Where the settings came from (for messages), without loading them again."""
        if self._settings is not None:
            return self._settings.source
        return self.config_path or "the config"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(self.config_path)
            if settings.source == "<embedded default>" and not self.quiet:
                # Never quietly: `tenants list` printing (none) must not look like data loss.
                click.echo("note: no config file (--config, $DOCEX_CONFIG, "
                           "~/.docex/config.yaml): using the embedded default, SQLite under "
                           f"{settings.sqlite.storage_root}", err=True)
            if self.lock_timeout is not None:
                settings = replace(settings, lock_timeout=self.lock_timeout)
            self._settings = settings
        return self._settings

    @property
    def manager(self) -> TenantDatabaseManager:
        # Imported here: `--help` and argument errors never load the database layers.
        from docex_ops.manager.tenant_manager import TenantDatabaseManager

        if self._manager is None:
            TenantDatabaseManager.reset()  # a CLI call owns its process' manager
            self._manager = TenantDatabaseManager(self.settings)
        return self._manager

    def manager_for(self, config_path: str | None) -> TenantDatabaseManager:
        """The manager of another DocEX config (``split --target-config``), else the
        command's own; a command uses one or the other, never both."""
        if config_path is not None:
            if self._manager is not None:
                raise RuntimeError("a manager is already open for this command's config")
            self._settings = self._with_own_audit_file(load_settings(config_path))
        return self.manager

    def _with_own_audit_file(self, target: Settings) -> Settings:
        """The operator's trail is in their own config (--config, $DOCEX_CONFIG): a target
        config written for DocEX rarely names one, and its lines must not be lost."""
        if target.audit_file is not None or not (self.config_path
                                                 or os.environ.get("DOCEX_CONFIG")):
            return target
        return replace(target, audit_file=load_settings(self.config_path).audit_file)

    def close(self) -> None:
        if self._manager is not None:
            from docex_ops.manager.tenant_manager import TenantDatabaseManager

            TenantDatabaseManager.reset()
            self._manager = None


def _command_format(ctx: click.Context, _param: click.Parameter, value: str | None
                    ) -> str | None:
    """A command's own --format wins over the global one, for its failures too."""
    obj = ctx.find_root().obj
    if isinstance(obj, CliState):
        obj.result.command = _command_name(ctx)
        if value is not None:
            obj.fmt = value
    return value


def format_option(func: F) -> F:
    """``--format`` on a command; overrides the group-level option."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                        callback=_command_format, is_eager=True,
                        help="Output format (default: the global --format).")(func)


def state() -> CliState:
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    if obj.result.command is None and not isinstance(ctx.command, click.Group):
        obj.result.command = _command_name(ctx)
    return obj


def emit(rows: Sequence[Mapping[str, Any]], fmt: str | None, columns: Sequence[str] | None = None,
         payload: Any = None, problems: Sequence[Mapping[str, Any]] = ()) -> None:
    """The rows as a table now; or ``payload`` (an object) as the envelope's ``data``,
    with ``problems``, written when the command ends (cli/output.py)."""
    cli_state = state()
    cli_state.result.data = payload  # kept in table mode too, for --report FILE
    cli_state.result.add_problems(problems)
    if (fmt or cli_state.fmt) != "json":
        click.echo(render_table(rows, columns))
    elif payload is None:
        raise TypeError("a command's JSON output is an object: pass payload")


def stream(payload: Any, problems: Sequence[Mapping[str, Any]] = ()) -> None:
    """One compact envelope per line, now (newline-delimited JSON for --watch)."""
    result = state().result
    result.data, result.problems, result.streamed = payload, [*problems], True
    click.echo(render_json(result.document(ok=True), compact=True))


def is_json(fmt: str | None) -> bool:
    return (fmt or state().fmt) == "json"


def info(message: str) -> None:
    """Progress and notes go to stderr so stdout stays parseable."""
    if not state().quiet:
        click.echo(message, err=True)

