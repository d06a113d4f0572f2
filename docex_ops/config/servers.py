"""``database.postgres.servers``: several PostgreSQL servers holding tenants.

Each server names its own connection (host, port, database, user, password,
sslmode); a key it leaves out is taken from the ``database.postgres`` block,
so shared credentials are written once. Without ``servers`` the single
``database.postgres`` block is one server named ``default``. The directory
server (``database.postgres.directory_server``, default ``default`` if there
is one, else the first listed) holds docex-ops' control schema: the tenant
directory, migration runs and move journals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from docex_ops.config.settings import SSLMODES, ConfigError, PostgresSettings

DEFAULT_SERVER = "default"
SERVER_KEYS = ("host", "port", "database", "user", "password", "sslmode")
_SERVER_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")

Servers = tuple[tuple[str, PostgresSettings], ...]


def parse_servers(pg_raw: Mapping[str, Any], base: PostgresSettings) -> tuple[Servers, str]:
    """The configured servers (in file order) and the name of the directory server."""
    from docex_ops.config import values as c
    raw = pg_raw.get("servers")
    if raw is None:
        directory = c._str(pg_raw, "database.postgres.directory_server", DEFAULT_SERVER)
        if directory != DEFAULT_SERVER:
            raise ConfigError(c._bad("database.postgres.directory_server", directory,
                                     "'default' (no database.postgres.servers are listed)"))
        return ((DEFAULT_SERVER, base),), DEFAULT_SERVER
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(c._bad("database.postgres.servers", raw,
                                 "a non-empty mapping of server name to connection settings"))
    servers = tuple((_server_name(name), _server(raw[name], name, base)) for name in raw)
    names = [name for name, _ in servers]
    default = DEFAULT_SERVER if DEFAULT_SERVER in names else names[0]
    directory = c._str(pg_raw, "database.postgres.directory_server", default)
    if directory not in names:
        raise ConfigError(c._bad("database.postgres.directory_server", directory,
                                 "one of the configured servers: " + ", ".join(names)))
    _refuse_duplicates(servers)
    return servers, directory


def _server_name(name: object) -> str:
    if not isinstance(name, str) or not _SERVER_NAME_RE.fullmatch(name):
        raise ConfigError(f"database.postgres.servers: invalid server name {name!r}; expected "
                          "1-32 characters of a-z, 0-9, _ and -, starting with a letter")
    return name


def _server(raw: object, name: str, base: PostgresSettings) -> PostgresSettings:
    from docex_ops.config import values as c
    key = f"database.postgres.servers.{name}"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(c._bad(key, raw, "a mapping of " + ", ".join(SERVER_KEYS)))
    unknown = sorted(set(raw) - set(SERVER_KEYS))
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {', '.join(map(str, unknown))}; "
                          f"expected {', '.join(SERVER_KEYS)} (the schema template and the "
                          "control schema are shared by every server)")
    return replace(
        base,
        host=c._str(raw, f"{key}.host", base.host),
        port=c._int(raw, f"{key}.port", base.port, low=1, high=65535),
        database=c._str(raw, f"{key}.database", base.database),
        user=c._str(raw, f"{key}.user", base.user),
        password=c._opt_str(raw, f"{key}.password") or base.password,
        sslmode=c._opt_choice(raw, f"{key}.sslmode", SSLMODES) or base.sslmode,
    )


def _refuse_duplicates(servers: Servers) -> None:
    """Two names for one database would let a tenant be 'on two servers' at once."""
    seen: dict[tuple[str, int, str], str] = {}
    for name, pg in servers:
        where = (pg.host, pg.port, pg.database)
        if where in seen:
            raise ConfigError(f"database.postgres.servers: {seen[where]!r} and {name!r} are the "
                              f"same database ({pg.describe()}); list each database once")
        seen[where] = name
