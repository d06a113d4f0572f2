"""The one output layer: rows rendered as a table (tabulate) or as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

FORMATS = ("table", "json")


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        # Field by field, not asdict(): that deep-copies everything first (a tenth of a
        # second for a status of 1,000 tenants).
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def render_json(payload: Any) -> str:
    return json.dumps(to_jsonable(payload), indent=2, sort_keys=False, default=str)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(none)"
    from tabulate import tabulate  # only when a table is actually rendered

    cols = list(columns) if columns else list(rows[0].keys())
    body = [[_cell(row.get(c)) for c in cols] for row in rows]
    return tabulate(body, headers=cols, tablefmt="simple", disable_numparse=True)


def render(rows: Sequence[Mapping[str, Any]], fmt: str, columns: Sequence[str] | None = None,
           payload: Any = None) -> str:
    """Rows as a table, or ``payload`` (default: the rows) as JSON."""
    if fmt == "json":
        return render_json(rows if payload is None else payload)
    return render_table(rows, columns)


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
