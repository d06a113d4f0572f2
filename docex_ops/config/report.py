"""`config check`: every effective setting docex-ops uses, and where it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docex_ops.config.settings import Settings

_URL_KEYS = ("host", "port", "database", "user", "password", "sslmode")


def _attribute(part: str, name: str) -> Callable[[Settings], Any]:
    return lambda settings: getattr(getattr(settings, part), name)


# Dotted key -> how to read its effective value from the settings.
_EFFECTIVE: dict[str, Callable[[Settings], Any]] = {
    "security.multi_tenancy_model": lambda s: s.multi_tenancy_model,
    "security.tenant_database_routing": lambda s: s.tenant_database_routing,
    "database.type": lambda s: s.db_type,
    **{f"database.postgres.{k}": _attribute("postgres", k) for k in _URL_KEYS},
    "database.postgres.schema_template": lambda s: s.postgres.schema_template,
    "database.postgres.control_schema": lambda s: s.postgres.control_schema,
    "database.postgres.directory_server": lambda s: s.directory_server,
    "database.sqlite.path_template": lambda s: s.sqlite.path_template,
    "database.sqlite.storage_root": lambda s: s.sqlite.storage_root,
    **{f"database.{k}": _attribute("pool", k)
       for k in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                 "max_tenant_engines", "idle_timeout", "max_total_connections")},
    "database.lock_timeout": lambda s: s.lock_timeout,
    "storage.documents_root": lambda s: s.documents_root,
    "logging.audit_file": lambda s: s.audit_file,
    "backup.signing_key_file": lambda s: s.signing_key_file,
    "isolation.allowed_roles": lambda s: s.isolation.allowed_roles,
}


@dataclass(frozen=True)
class SettingRow:
    key: str
    value: Any
    source: str  # file:line, $DOCEX_DATABASE_URL, or default


def effective_settings(settings: Settings, lines: dict[str, int],
                       url_set: bool) -> list[SettingRow]:
    """One row per setting; passwords masked (``lines``: the file's key -> line)."""
    file = settings.source.split(" and ")[0]
    rows = []
    for key, read in _EFFECTIVE.items():
        value = read(settings)
        if key.endswith("password") and value is not None:
            value = "********"
        if url_set and key.startswith("database.postgres.") and key.rsplit(".", 1)[1] in \
                _URL_KEYS and settings.db_type == "postgresql":
            source = "$DOCEX_DATABASE_URL"
        elif key in lines:
            source = f"{file}:{lines[key]}"
        else:
            source = "default"
        rows.append(SettingRow(key, value if value is None or isinstance(value, bool | int |
                                                                            float) else str(value),
                               source))
    for name, server in settings.servers:
        rows.append(SettingRow(f"database.postgres.servers.{name}", server.describe(),
                               f"{file}:{lines.get(f'database.postgres.servers.{name}', '?')}"))
    return rows
