"""``isolation.allowed_roles``: the operator roles verify-isolation accepts on every tenant.

A role listed here may hold rights on any tenant (grants, memberships of tenant
roles, default privileges): it is an operator, like the configured user, which
is always allowed. Left out, the list is the configured user of each server.
Every bad entry is reported, one message per value, before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docex_ops.config.settings import ConfigError
from docex_ops.tenancy import PG_IDENTIFIER_MAX_BYTES, TENANT_ROLE_PREFIX

KEY = "isolation.allowed_roles"


def allowed_roles(section: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The validated list, or None when the key is absent."""
    from docex_ops.config.values import _bad

    raw = section.get("allowed_roles")
    if raw is None:
        return None
    if isinstance(raw, str) or not isinstance(raw, list):
        raise ConfigError(_bad(KEY, raw, "a list of role names, e.g. [postgres, docex_admin]"))
    problems = [_bad(f"{KEY}[{i}]", value, why)
                for i, value in enumerate(raw) if (why := _refusal(value))]
    if problems:
        raise ConfigError("\n".join(problems))
    return tuple(dict.fromkeys(raw))


def _refusal(value: object) -> str:
    """Why ``value`` cannot be an allowed role ("" when it can)."""
    if not isinstance(value, str) or not value.strip():
        return "a non-empty role name"
    if "\0" in value or len(value.encode()) > PG_IDENTIFIER_MAX_BYTES:
        return f"a role name of at most {PG_IDENTIFIER_MAX_BYTES} bytes without NUL"
    if value.lower() == "public":
        return "a role, not PUBLIC (allowing PUBLIC would allow everyone)"
    if value.startswith("pg_"):
        return "a role of yours, not a predefined pg_* role"
    if value.startswith(TENANT_ROLE_PREFIX):
        return f"an operator role, not a tenant role ({TENANT_ROLE_PREFIX}<id>)"
    return ""
