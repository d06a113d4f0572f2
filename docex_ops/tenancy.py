"""Tenant identity: the one place that says which tenant ids are valid and
where a tenant lives (PostgreSQL schema name or SQLite file path).

Every command and the manager call these functions before any SQL or file
operation, so hostile ids are refused with a reason before anything happens.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TENANT_ID_MAX_LEN = 48
PG_IDENTIFIER_MAX_BYTES = 63
# Schemas docex-ops never treats as a tenant's, whatever the template says.
RESERVED_SCHEMAS = frozenset({"public", "information_schema", "docex_ops", "docex_system"})
# Ids refused outright: PostgreSQL's own names, whatever a template would make of them.
RESERVED_TENANT_IDS = RESERVED_SCHEMAS | {"pg_catalog", "pg_toast", "pg_temp"}
CONTROL_SCHEMA = "docex_ops"
CONTROL_SQLITE_FILE = "_docex_ops.db"
# A tenant's own PostgreSQL role (``tenants provision --with-role``): login-less, owns its schema.
TENANT_ROLE_PREFIX = "docex_t_"

_TENANT_ID_RE = re.compile(r"[a-z0-9][a-z0-9_]*")
_PG_IDENT_RE = re.compile(r"[a-z_][a-z0-9_]*")


class TenantIdError(ValueError):
    """A tenant id (or what a template makes of it) breaks the tenant rules."""


@dataclass(frozen=True)
class UserContext:
    """Who is calling and for which tenant, as DocEX's ``UserContext`` has it."""

    user_id: str
    tenant_id: str | None = None
    user_email: str | None = None
    roles: tuple[str, ...] | list[str] | None = None
    attributes: dict[str, Any] | None = field(default=None, hash=False)


def validate_tenant_id(raw: object) -> str:
    """Return ``raw`` if it is a valid tenant id, else raise TenantIdError with the reason.

    The rule (DESIGN.md): 1-48 characters of ``[a-z0-9_]``, starting with a
    letter or digit. No normalisation: ``Acme`` is refused, not lower-cased,
    because DocEX quotes schema names and would look for a different schema.
    """
    if not isinstance(raw, str):
        raise TenantIdError(f"tenant id must be a string, got {type(raw).__name__}")
    shown = _shown(raw)
    if raw == "":
        raise TenantIdError("tenant id is empty; use 1-48 characters of a-z, 0-9 and _")
    if len(raw) > TENANT_ID_MAX_LEN:
        raise TenantIdError(
            f"tenant id {shown} is {len(raw)} characters long; at most {TENANT_ID_MAX_LEN} allowed"
        )
    if not _TENANT_ID_RE.fullmatch(raw):
        bad = next((c for c in raw if not _TENANT_ID_RE.fullmatch("a" + c)), None)
        if bad is not None:
            reason = f"character {bad!r} is not allowed"
        else:
            reason = "it must start with a letter or a digit"
        raise TenantIdError(
            f"tenant id {shown} is invalid: {reason}; use 1-48 characters of a-z, 0-9 and _, "
            "starting with a letter or digit"
        )
    if raw in RESERVED_TENANT_IDS or raw.startswith("pg_"):
        raise TenantIdError(f"tenant id {shown} is reserved by PostgreSQL or docex-ops; "
                            "choose another id")
    return raw


def validate_all(tenant_ids: Iterable[str]) -> list[str]:
    """Validate every id before touching anything; report all bad ones at once."""
    ids, problems = [], []
    for raw in tenant_ids:
        try:
            ids.append(validate_tenant_id(raw))
        except TenantIdError as exc:
            problems.append(str(exc))
    if problems:
        raise TenantIdError("; ".join(problems))
    return list(dict.fromkeys(ids))


def schema_name_for(tenant_id: str, template: str) -> str:
    """The PostgreSQL schema of ``tenant_id`` under ``template``, checked to be safe."""
    tenant_id = validate_tenant_id(tenant_id)
    name = template.format(tenant_id=tenant_id)
    check_schema_name(name, tenant_id)
    return name


def check_schema_name(name: str, tenant_id: str | None = None) -> None:
    """Refuse schema names that are not plain identifiers or that are reserved."""
    who = f" (tenant {tenant_id!r})" if tenant_id else ""
    if len(name.encode()) > PG_IDENTIFIER_MAX_BYTES:
        raise TenantIdError(
            f"schema name {_shown(name)}{who} is {len(name.encode())} bytes; "
            f"PostgreSQL identifiers are at most {PG_IDENTIFIER_MAX_BYTES}: use a shorter tenant id"
        )
    if not _PG_IDENT_RE.fullmatch(name):
        raise TenantIdError(
            f"schema name {_shown(name)}{who} is not a plain lower-case identifier "
            "([a-z_][a-z0-9_]*): check database.postgres.schema_template"
        )
    if name.startswith("pg_") or name in RESERVED_SCHEMAS:
        raise TenantIdError(f"schema name {name!r}{who} is reserved; choose another tenant id")


def role_name_for(tenant_id: str) -> str:
    """The login-less PostgreSQL role that owns ``tenant_id``'s schema (<= 56 bytes)."""
    return TENANT_ROLE_PREFIX + validate_tenant_id(tenant_id)


def sqlite_path_for(tenant_id: str, template: str, storage_root: Path) -> Path:
    """The SQLite file of ``tenant_id``: the template applied, inside ``storage_root``.

    Only the storage root (the operator's configuration) is resolved; below it the
    path is taken as the template writes it, never through a link, so that a link
    planted under the root is seen as a link (backends.sqlite_paths refuses it)
    rather than followed to another tenant's file.
    """
    tenant_id = validate_tenant_id(tenant_id)
    given, root = _roots(str(storage_root))
    # Plain strings: discovery asks for thousands of paths, and pathlib is slow at it.
    text = os.path.normpath(os.path.join(os.getcwd(), template.format(tenant_id=tenant_id)))
    if given != root and text.startswith(given + os.sep):
        text = root + text[len(given):]
    path = Path(text)
    if not text.startswith(root.rstrip(os.sep) + os.sep):
        raise TenantIdError(
            f"tenant {tenant_id!r} would live at {path}, outside the storage root {root}"
        )
    if path.name == CONTROL_SQLITE_FILE:
        raise TenantIdError(f"tenant {tenant_id!r} would overwrite the control file {path}")
    return path


@functools.lru_cache(maxsize=64)
def _roots(storage_root: str) -> tuple[str, str]:
    """(the root as written, made absolute; the root with its links resolved): resolved
    once, not once per tenant."""
    return os.path.abspath(storage_root), os.path.realpath(storage_root)


def tenant_id_pattern(template: str) -> re.Pattern[str]:
    """A regex that extracts the tenant id from a name made by ``template``."""
    head, _, tail = template.partition("{tenant_id}")
    return re.compile(re.escape(head) + r"(?P<tenant_id>[a-z0-9][a-z0-9_]{0,47})" + re.escape(tail))


def _shown(raw: str) -> str:
    """A printable, bounded rendering of untrusted input for error messages."""
    text = raw if len(raw) <= 60 else raw[:57] + "..."
    return ascii(text)
