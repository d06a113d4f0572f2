"""The audit trail: one structured JSON line per action that changes a tenant.

Every line carries ``time`` (UTC, ISO 8601), ``operator`` (an explicit actor,
else ``$USER``), ``tenant``, ``action``, ``target``, ``outcome`` and an
optional ``detail`` mapping. Lines are appended to ``logging.audit_file``
when it is configured, and go to the ``docex_ops.audit`` logger; the CLI shows
them on stderr with ``--audit-stderr``, or when no file is configured and stderr
is not a terminal (:func:`show_on_stderr`). Secrets never reach either: detail keys
that name a password, secret or token are replaced, and credentials inside
URLs are masked.

Operations call :func:`record` after they acted (or failed to)::

    from docex_ops import audit_trail
    audit_trail.record("tenant.migrate", tenant_id, target="0003_object_paths",
                 outcome=audit_trail.OK, detail={"from": "0002_docex_299"})

Conventions: ``action`` is ``<object>.<verb>`` (``tenant.provision``,
``tenant.drop``, ``tenant.migrate``, ``tenant.restore``, ``tenant.split``,
``tenant.close_idle``, ``basket.create``, ``document.add``); ``target`` names
what was acted on (a schema, a file, a revision, a basket or document id);
``outcome`` is one of ``ok``, ``failed`` (tried and did not complete) or
``refused`` (a safety rule stopped it before any change). No-ops (a tenant
that already existed, a dry run) are not recorded.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOGGER_NAME = "docex_ops.audit"  # the logger name users configure; kept
OK, FAILED, REFUSED = "ok", "failed", "refused"
OUTCOMES = (OK, FAILED, REFUSED)

logger = logging.getLogger(LOGGER_NAME)

_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|credential", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):[^@\s]*@",
                              re.IGNORECASE)
_HIDDEN = "<hidden>"


@dataclass(frozen=True)
class AuditEvent:
    time: str
    operator: str
    tenant: str | None
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any] | None = field(default=None)

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if not (k == "detail" and v is None)}
        return json.dumps(data, sort_keys=False, default=str, separators=(",", ":"))


class _Sink:
    """Process-wide destination: the configured file and the explicit actor."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.path: Path | None = None
        self.actor: str | None = None


_sink = _Sink()


def configure(audit_file: Path | None) -> None:
    """Append future lines to ``audit_file`` (None: the log only). The manager calls
    this with ``logging.audit_file`` whenever it is configured."""
    with _sink.lock:
        _sink.path = audit_file


def audit_file() -> Path | None:
    return _sink.path


def set_actor(actor: str | None) -> None:
    """Name the operator of this process (the CLI's ``--actor``); None: ``$USER``."""
    if actor is not None and not actor.strip():
        raise ValueError("--actor must not be empty")
    _sink.actor = actor.strip() if actor else None


def current_operator() -> str:
    if _sink.actor:
        return _sink.actor
    user = os.environ.get("USER") or os.environ.get("USERNAME")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def record(action: str, tenant: str | None, target: str | None, outcome: str,
           detail: Mapping[str, Any] | None = None, *, actor: str | None = None) -> AuditEvent:
    """Write one audit line and return it. See the module docstring for conventions.

    ``actor`` overrides the process operator for this line (the document API
    passes ``UserContext.user_id``). Failing to append to the audit file raises
    RuntimeError: an operator who configured a trail must not lose lines silently.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    event = AuditEvent(
        time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        operator=actor or current_operator(),
        tenant=tenant,
        action=action,
        target=redact_text(target) if target is not None else None,
        outcome=outcome,
        detail=redact(dict(detail)) if detail else None,
    )
    line = event.to_json()
    logger.info(line)
    with _sink.lock:
        path = _sink.path
        if path is not None:
            _append(path, line)
    return event


def _append(path: Path, line: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write() of one line on an O_APPEND descriptor: lines from concurrent
        # processes never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        raise RuntimeError(f"cannot append to the audit file {path} (logging.audit_file): "
                           f"{exc.strerror}") from exc


def redact(value: Any) -> Any:
    """``value`` with secrets hidden: secret-named keys and credentials in URLs."""
    if isinstance(value, Mapping):
        return {str(k): _HIDDEN if _SECRET_KEY.search(str(k)) else redact(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{_HIDDEN}@", text)


def read_events(path: Path, tenants: Collection[str] = (), limit: int | None = None,
                exclude: Collection[str] = ()) -> list[AuditEvent]:
    """The last ``limit`` events of an audit file (all if None), oldest first, only of
    ``tenants`` when given, never of ``exclude``. Lines that are not audit events are
    reported."""
    if not path.exists():  # configured, nothing recorded yet
        return []
    kept: deque[AuditEvent] = deque(maxlen=limit)
    for number, event in _parse(path):
        if event is None:
            raise RuntimeError(f"{path}:{number}: not an audit line (JSON object expected)")
        if (not tenants or event.tenant in tenants) and event.tenant not in exclude:
            kept.append(event)
    return list(kept)


def _parse(path: Path) -> Iterator[tuple[int, AuditEvent | None]]:
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                yield number, AuditEvent(
                    time=data["time"], operator=data["operator"], tenant=data.get("tenant"),
                    action=data["action"], target=data.get("target"), outcome=data["outcome"],
                    detail=data.get("detail"))
            except (ValueError, KeyError, TypeError):
                yield number, None


# When audit lines also go to stderr (the CLI decides, see show_on_stderr).
STDERR_ALWAYS = "always"             # --audit-stderr
STDERR_WITHOUT_FILE = "without_file"  # only while no audit file is configured
STDERR_NEVER = "never"
STDERR_MODES = (STDERR_ALWAYS, STDERR_WITHOUT_FILE, STDERR_NEVER)


_stderr_writer: list[Callable[[str], None]] = []  # a live progress console, if any


def write_stderr_through(writer: Callable[[str], None] | None) -> None:
    """Send stderr audit lines (without their newline) to ``writer`` while a progress
    bar is live, so each prints whole above it; None: back to ``sys.stderr``."""
    _stderr_writer[:] = [writer] if writer is not None else []


class StderrHandler(logging.Handler):
    """Writes bare audit lines to whatever ``sys.stderr`` is at emit time, or through
    the live progress console (:func:`write_stderr_through`)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def emit(self, record: logging.LogRecord) -> None:
        if self.mode == STDERR_WITHOUT_FILE and audit_file() is not None:
            return
        try:
            line = self.format(record)
            if _stderr_writer:
                _stderr_writer[0](line)
            else:
                sys.stderr.write(line + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the operation
            self.handleError(record)


def show_on_stderr(mode: str | bool) -> None:
    """Print audit lines on stderr as bare JSON: ``always``, ``without_file`` (only
    while no ``logging.audit_file`` is configured) or ``never``; True/False mean
    always/never."""
    if isinstance(mode, bool):
        mode = STDERR_ALWAYS if mode else STDERR_NEVER
    if mode not in STDERR_MODES:
        raise ValueError(f"audit stderr mode {mode!r}: expected one of {', '.join(STDERR_MODES)}")
    for handler in [h for h in logger.handlers if isinstance(h, StderrHandler)]:
        logger.removeHandler(handler)
    enabled = mode != STDERR_NEVER
    if enabled:
        logger.addHandler(StderrHandler(mode))
        logger.setLevel(logging.INFO)
    logger.propagate = not enabled
