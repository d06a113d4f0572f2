"""``docex-ops audit ...``: read the audit trail back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from docex_ops import audit_trail as trail
from docex_ops.cli.common import UsageProblem, emit, format_option, state
from docex_ops.cli.options import example, selection_options
from docex_ops.cli.output import to_jsonable
from docex_ops.tenancy import validate_all

if TYPE_CHECKING:
    from docex_ops.migrate.plan import Selection

COLUMNS = ("time", "operator", "tenant", "action", "target", "outcome", "detail")


@click.group()
def audit() -> None:
    """The audit trail of tenant changes (logging.audit_file, JSON lines)."""


@audit.command("tail", epilog=example(
    "docex-ops audit tail --tenant acme -n 50"))
@selection_options
@click.option("-n", "--lines", "limit", type=click.IntRange(min=1), default=20,
              show_default=True, help="How many of the latest lines to show.")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Read this audit file instead of the configured logging.audit_file.")
@format_option
def tail_cmd(selection: Selection, limit: int, path: Path | None, fmt: str | None) -> None:
    """The latest audit lines, oldest first: who changed which tenant, how it ended.

    Every provisioning, drop and document write is recorded with time,
    operator ($USER or --actor), tenant, action, target and outcome.
    """
    named = set(selection.named())  # ids checked against the tenant rules
    excluded = set(validate_all(selection.exclude))
    settings = state().settings
    path = path or settings.audit_file
    if path is None:
        raise UsageProblem(f"no audit file: set logging.audit_file in {settings.source} "
                           "(or pass --file)")
    events = trail.read_events(path, named, limit, excluded)
    payload = [to_jsonable(e) for e in events]
    # The table shows detail as compact JSON, exactly as it is stored.
    rows = [dict(r, detail=json.dumps(r["detail"], separators=(",", ":"))
                 if r["detail"] is not None else None) for r in payload]
    emit(rows, fmt, columns=COLUMNS, payload={"events": payload})
