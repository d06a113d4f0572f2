"""The one error boundary: every expected failure becomes one line and an exit code.

Exit codes: 0 success; 1 the operation found or caused a failure; 2 usage,
configuration or connection problem; 130 interrupted (Ctrl-C). A traceback is
printed only for an exception nobody expected (a bug), followed by a line asking
to report it. ``-v`` adds the cause under the one line.
"""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

import click

from docex_ops.config.values import ConfigError
from docex_ops.tenancy import TenantIdError

USAGE_EXIT = 2
FAILURE_EXIT = 1
INTERRUPTED_EXIT = 130



class OperationFailed(click.ClickException):
    """The operation ran and found or caused a failure: exit 1."""

    exit_code = FAILURE_EXIT


class UsageProblem(click.ClickException):
    """Bad input, configuration or connection: exit 2."""

    exit_code = USAGE_EXIT


def one_line(text: object) -> str:
    """The message on one line: libpq's own messages span several."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("(Background on this error")]
    return "; ".join(lines) if lines else type(text).__name__


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _database_problem(exc: BaseException, source: str) -> click.ClickException | None:
    """A SQLAlchemy / DBAPI error as one line: connecting is exit 2, a statement exit 1."""
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    orig = exc.orig if exc.orig is not None else exc
    message = _first_line(orig)
    lowered = message.lower()
    if exc.statement is None:  # raised while connecting: no statement ran yet
        return UsageProblem(f"cannot connect to the database: {message}; check that the "
                            "server is running and the connection settings (host, port, "
                            f"user, password, database) in {source} or $DOCEX_DATABASE_URL")
    if exc.connection_invalidated or "terminat" in lowered or "server closed" in lowered:
        return OperationFailed(f"the connection to the database was lost mid-run: {message}; "
                               "rerun the command once the server is back (a migration "
                               "run can be resumed with `docex-ops migrate resume RUN_ID`)")
    return OperationFailed(f"the database refused a statement: {message}")


def translate(exc: BaseException, source: str = "the config") -> click.ClickException | None:
    """The one-line form of an expected failure, or None for a bug; ``source`` names
    where the settings came from."""
    if isinstance(exc, ConfigError | TenantIdError):
        return UsageProblem(one_line(exc))
    from docex_ops.migrate.scripts import RevisionError  # noqa: PLC0415 - loaded on failure

    if isinstance(exc, RevisionError):
        return UsageProblem(one_line(exc))
    if isinstance(exc, LookupError):
        return UsageProblem(one_line(exc.args[0] if exc.args else exc))
    database = _database_problem(exc, source)
    if database is not None:
        return database
    if isinstance(exc, RuntimeError):
        return OperationFailed(one_line(exc))
    if isinstance(exc, OSError) and exc.filename is not None:
        return OperationFailed(f"{exc.filename}: {exc.strerror or one_line(exc)}")
    return None


def show_cause(exc: BaseException) -> None:
    """``-v``: the exception and what caused it, one line each, under the message."""
    seen: BaseException | None = exc
    while seen is not None:
        click.echo(f"cause: {type(seen).__module__}.{type(seen).__qualname__}: "
                   f"{one_line(seen)}", err=True)
        seen = seen.__cause__ or seen.__context__


def interrupted() -> NoReturn:
    click.echo("interrupted (Ctrl-C); each tenant changes in its own transaction, so "
               "rerun the command to finish", err=True)
    raise click.exceptions.Exit(INTERRUPTED_EXIT)


def report_bug(exc: BaseException) -> NoReturn:
    traceback.print_exception(exc, file=sys.stderr)
    click.echo("error: this is a bug in docex-ops, not a problem with your setup; please "
               "report it with the traceback above", err=True)
    raise click.exceptions.Exit(FAILURE_EXIT)
