"""``database.postgres.pooler`` / ``direct`` / ``pooler_admin``: running behind PgBouncer.

``database.postgres.host``/``port`` is where applications (tenant engines) connect: the
pooler when there is one. ``direct: {host, port}`` is PostgreSQL itself, for operator work
that needs a real session (pg_dump, runner locks, pg_terminate_backend, logical
replication); without it the same host and port. Inside Settings, ``postgres`` is the
direct endpoint (so every operator path goes direct without knowing about poolers) and
``pooler.application`` the endpoint tenant engines use.

Modes: ``none`` routes at connect time (libpq ``options``); ``pgbouncer_transaction`` and
``pgbouncer_session`` route every transaction with ``SET LOCAL search_path`` and check it
in the same round trip (docex_ops.backends.pg_routing). Statement mode is refused: a
transaction of several statements cannot be routed there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from docex_ops.config.values import ConfigError, _bad, _int, _opt_str, _section, _str

if TYPE_CHECKING:
    from docex_ops.config.settings import PostgresSettings

NONE, TRANSACTION, SESSION = "none", "pgbouncer_transaction", "pgbouncer_session"
MODES = (NONE, TRANSACTION, SESSION)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class PoolerAdmin:
    """PgBouncer's admin console (the virtual database ``pgbouncer``)."""

    host: str
    port: int
    user: str
    password: str | None = None
    database: str = "pgbouncer"


@dataclass(frozen=True)
class PoolerSettings:
    mode: str = NONE
    # Where tenant engines connect; None: the direct endpoint (settings.postgres).
    application: Endpoint | None = None
    admin: PoolerAdmin | None = None

    @property
    def per_transaction(self) -> bool:
        """Whether every tenant transaction routes itself (SET LOCAL) instead of the
        connection at start-up."""
        return self.mode != NONE


def parse_pooler(pg_raw: Mapping[str, Any], postgres: PostgresSettings, fleet: bool
                 ) -> tuple[PoolerSettings, PostgresSettings]:
    """The pooler settings and the direct endpoint's PostgresSettings."""
    mode = pg_raw.get("pooler") or NONE
    if mode not in MODES:
        raise ConfigError(_bad("database.postgres.pooler", mode, "one of " + ", ".join(MODES)
                               + " (PgBouncer's statement mode is not supported)"))
    direct = _section(pg_raw, "direct", "database.postgres.direct")
    admin_raw = _section(pg_raw, "pooler_admin", "database.postgres.pooler_admin")
    if fleet and (mode != NONE or direct or admin_raw):
        raise ConfigError("database.postgres.pooler/direct/pooler_admin: not supported with "
                          "database.postgres.servers yet; configure one server")
    admin = None
    if admin_raw:
        admin = PoolerAdmin(
            host=_str(admin_raw, "database.postgres.pooler_admin.host", postgres.host),
            port=_int(admin_raw, "database.postgres.pooler_admin.port", postgres.port,
                      low=1, high=65535),
            user=_str(admin_raw, "database.postgres.pooler_admin.user", postgres.user),
            password=_opt_str(admin_raw, "database.postgres.pooler_admin.password"),
            database=_str(admin_raw, "database.postgres.pooler_admin.database", "pgbouncer"))
    if not direct:
        return PoolerSettings(mode, None, admin), postgres
    host = _str(direct, "database.postgres.direct.host", postgres.host)
    port = _int(direct, "database.postgres.direct.port", postgres.port, low=1, high=65535)
    application: Endpoint | None = Endpoint(postgres.host, postgres.port)
    if (host, port) == (postgres.host, postgres.port):
        application = None
    return PoolerSettings(mode, application, admin), replace(postgres, host=host, port=port)
