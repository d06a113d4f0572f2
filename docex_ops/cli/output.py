"""The one output layer: rows rendered as a table (tabulate), or the JSON envelope.

Every command's ``--format json`` output is one envelope (docs/json/ holds a schema per
command)::

    {"command": "tenants list", "ok": true, "data": {...}, "problems": [...], "error": null}

``ok`` is true exactly when the command exits 0; ``error`` is then null, else the one
line the error boundary printed. ``problems`` lists what the command found about
particular tenants or servers, each ``{"tenant": ..., "server": ..., "message": ...}``
(tenant or server null when the problem is not about one). ``data`` is an object whose
shape is the command's own. Tenants are always ``tenant``, servers ``server``; times
are ISO 8601 in UTC with a ``Z``.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

FORMATS = ("table", "json")


def json_key(name: str) -> str:
    """One name for a tenant in every output: ``tenant`` (``tenant_id`` is internal)."""
    if name == "tenant_id":
        return "tenant"
    if name == "tenant_ids":
        return "tenants"
    if name.endswith("_tenant_id"):
        return name[: -len("_id")]
    return name


def utc_time(value: datetime | str) -> str:
    """ISO 8601 in UTC with ``Z``; a naive time is UTC (docex-ops stores UTC only)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


_PLAIN = (str, int, float, bool, type(None))


@functools.cache
def _field_keys(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON key) of each field of dataclass ``cls``, worked out once per class."""
    return tuple((f.name, json_key(f.name)) for f in fields(cls))


class StreamedList(list[Any]):
    """A JSON array whose items are made as the writer reads them (``json_chunks``):
    ``metrics --format json`` at 10,000 tenants is 40,000 samples, never all held.
    ``items`` makes a fresh iterator each time the array is written (stdout and a
    --report file)."""

    def __init__(self, items: Callable[[], Iterable[Any]]) -> None:
        super().__init__()
        self.items = items
        self._pending: Iterator[Any] | None = None

    def __bool__(self) -> bool:
        # json's writer asks whether an array is empty, then iterates it: the first item
        # is made here and handed on with the rest.
        items = iter(self.items())
        for first in items:
            self._pending = itertools.chain((first,), items)
            return True
        return False

    def __iter__(self) -> Iterator[Any]:
        pending, self._pending = self._pending, None
        return pending if pending is not None else iter(self.items())


def to_jsonable(value: Any) -> Any:
    # Leaves first: most values are; a status of 10,000 tenants converts 120,000 of them.
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, StreamedList):
        items = value.items
        return StreamedList(lambda: map(to_jsonable, items()))
    if is_dataclass(value) and not isinstance(value, type):
        # Field by field, not asdict(): that deep-copies everything first (a tenth of a
        # second for a status of 1,000 tenants).
        return {key: to_jsonable(getattr(value, name))
                for name, key in _field_keys(type(value))}
    if isinstance(value, Mapping):
        return {json_key(str(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return utc_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def problem_entry(message: str, tenant: str | None = None, server: str | None = None
            ) -> dict[str, str | None]:
    """One entry of the envelope's ``problems``."""
    return {"tenant": tenant, "server": server, "message": message}


def envelope(command: str, ok: bool, data: Any, problems: Sequence[Mapping[str, Any]] = (),
             error: str | None = None) -> dict[str, Any]:
    """The one JSON document every command writes (see the module docstring)."""
    return {"command": command, "ok": ok, "data": to_jsonable(data),
            "problems": [problem_entry(str(p["message"]), p.get("tenant"), p.get("server"))
                         for p in problems],
            "error": None if ok else (error or "failed")}


def render_json(payload: Any, compact: bool = False) -> str:
    if compact:  # one line: newline-delimited JSON (--watch)
        # iterencode, not dumps: dumps' C writer would take a StreamedList for empty.
        encoder = json.JSONEncoder(separators=(",", ":"), default=str)
        return "".join(encoder.iterencode(to_jsonable(payload)))
    return "".join(json_chunks(payload))


def json_chunks(payload: Any, size: int = 1 << 16) -> Iterator[str]:
    """``payload`` as indented JSON in pieces of about ``size`` characters (StreamedLists
    are read as they are written)."""
    encoder = json.JSONEncoder(indent=2, sort_keys=False, default=str)
    piece: list[str] = []
    held = 0
    for token in encoder.iterencode(to_jsonable(payload)):
        piece.append(token)
        held += len(token)
        if held >= size:
            yield "".join(piece)
            piece, held = [], 0
    yield "".join(piece)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(none)"
    from tabulate import tabulate  # only when a table is actually rendered

    cols = list(columns) if columns else list(rows[0].keys())
    body = [[_cell(row.get(c)) for c in cols] for row in rows]
    return tabulate(body, headers=cols, tablefmt="simple", disable_numparse=True)


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


class CommandResult:
    """What a command hands to its envelope while it runs; written once, when the
    command ends, so that ``ok`` and ``error`` say how it ended (its exit code)."""

    def __init__(self) -> None:
        self.command: str | None = None
        self.data: Any = None
        self.problems: list[Mapping[str, Any]] = []
        self.files: list[Path] = []  # also written here (migrate --report FILE)
        self.streamed = False  # --watch: each report was written as it came
        self.written = False  # the envelope was written: never twice

    def add_problems(self, problems: Sequence[Mapping[str, Any]]) -> None:
        self.problems.extend(problems)

    def document(self, ok: bool, error: str | None = None) -> dict[str, Any]:
        return envelope(self.command or "", ok, self.data, self.problems, error)


def placement_problems(problems: Sequence[Any]) -> list[dict[str, str | None]]:
    """Tenants the directory and the servers disagree about, as envelope problems."""
    return [problem_entry(p.message, p.tenant_id, ",".join(p.servers) or None) for p in problems]
