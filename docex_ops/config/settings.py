"""Load and validate the DocEX configuration into one frozen Settings object.

Lookup order: ``--config PATH``, ``$DOCEX_CONFIG``, ``~/.docex/config.yaml``,
else the embedded default (SQLite under ``./storage``). ``$DOCEX_DATABASE_URL``
replaces the connection block. Every bad value fails here, with one message
naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docex_ops.config.pooler import PoolerSettings
from docex_ops.config.values import (
    ConfigError,
    _audit_file,
    _bad,
    _bool,
    _check_control_schema,
    _choice,
    _duration,
    _get,
    _int,
    _number,
    _opt_choice,
    _opt_int,
    _opt_str,
    _resolve,
    _schema_template,
    _section,
    _str,
    _template,
    _template_root,
    parse_duration,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from docex_ops.config.citus import CitusSettings

__all__ = ["ConfigError", "IsolationSettings", "PoolSettings", "PostgresSettings", "Settings",
           "SqliteSettings", "default_settings", "load_settings", "parse_duration",
           "settings_from_mapping"]

MODELS = ("database_level", "row_level", "none")
DB_TYPES = {"postgresql": "postgresql", "postgres": "postgresql", "sqlite": "sqlite"}
DEFAULT_SCHEMA_TEMPLATE = "tenant_{tenant_id}"
DEFAULT_PATH_TEMPLATE = "storage/tenant_{tenant_id}/docex.db"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class PostgresSettings:
    host: str = "localhost"
    port: int = 5432
    database: str = "docex"
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    schema_template: str = DEFAULT_SCHEMA_TEMPLATE
    control_schema: str = "docex_ops"

    def url(self, application_name: str | None = None) -> URL:
        """A psycopg2 URL (a bare postgresql:// would pick psycopg 3 on SQLAlchemy 2.1)."""
        query: dict[str, str] = {}
        if self.sslmode:
            query["sslmode"] = self.sslmode
        if application_name:
            query["application_name"] = application_name
        from sqlalchemy.engine import URL  # SQLAlchemy only for whoever connects

        return URL.create(
            "postgresql+psycopg2",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=query,
        )

    def connect_args(self, application_name: str | None = None) -> dict[str, object]:
        """The same connection as ``url()``, as psycopg2.connect keywords."""
        args: dict[str, object] = {"host": self.host, "port": self.port, "user": self.user,
                                   "dbname": self.database}
        optional = {"password": self.password, "sslmode": self.sslmode,
                    "application_name": application_name}
        return args | {k: v for k, v in optional.items() if v is not None}

    def describe(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class SqliteSettings:
    path: Path
    path_template: str
    storage_root: Path

    def describe(self) -> str:
        return f"sqlite:{self.storage_root}"


@dataclass(frozen=True)
class PoolSettings:
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 30
    pool_recycle: int = 1800
    max_tenant_engines: int = 200
    idle_timeout: float = 600
    # Open tenant connections this process may hold across all pools of one server
    # (with several servers: on each). None: on PostgreSQL derived from each server
    # (see docex_ops.manager.budget.derive_budget); on SQLite unbounded.
    max_total_connections: int | None = None


@dataclass(frozen=True)
class IsolationSettings:
    # isolation.allowed_roles: the operator roles verify-isolation accepts on every tenant
    # (grants, memberships, default privileges). None: the configured user of each server.
    allowed_roles: tuple[str, ...] | None = None

    def operator_roles(self, user: str) -> frozenset[str]:
        """The roles allowed on every tenant of a server that docex-ops reaches as ``user``:
        the list, and always ``user`` itself (docex-ops must reach what it audits)."""
        return frozenset(self.allowed_roles or ()) | {user}


@dataclass(frozen=True)
class Settings:
    multi_tenancy_model: str
    tenant_database_routing: bool
    db_type: str
    postgres: PostgresSettings
    sqlite: SqliteSettings
    pool: PoolSettings
    source: str  # where the settings came from, for messages
    # Where the document API stores files of PostgreSQL tenants (SQLite tenants
    # keep theirs next to their database file); None: ./storage.
    documents_root: Path | None = None
    # JSON-lines audit trail (logging.audit_file); None: audit lines go to the log only.
    audit_file: Path | None = None
    # database.postgres.servers in file order (see config_servers); ``postgres`` above is
    # the directory server's entry. Empty: the single ``postgres`` block, named "default".
    servers: tuple[tuple[str, PostgresSettings], ...] = ()
    directory_server: str = "default"
    # How long any command waits for a lock an application holds on a tenant
    # (database.lock_timeout, or the global --lock-timeout) before it reports the
    # tenant `locked` and goes on: PostgreSQL lock_timeout, pg_dump
    # --lock-wait-timeout, SQLite's busy timeout.
    lock_timeout: float = 5.0
    # backup.signing_key_file (see config_backup): manifests are signed and checked.
    signing_key_file: Path | None = None
    isolation: IsolationSettings = IsolationSettings()
    # database.postgres.pooler / direct / pooler_admin (see config_pooler).
    pooler: PoolerSettings = PoolerSettings()
    # database.postgres.topology: citus (see config_citus); None: plain PostgreSQL.
    citus: CitusSettings | None = None

    @property
    def server_settings(self) -> dict[str, PostgresSettings]:
        """Every PostgreSQL server by name (one named ``default`` without a servers list)."""
        return dict(self.servers) if self.servers else {"default": self.postgres}

    @property
    def fleet(self) -> bool:
        """Whether tenants are spread over more than one PostgreSQL server."""
        return self.db_type == "postgresql" and len(self.servers) > 1

    @property
    def database_level(self) -> bool:
        return self.multi_tenancy_model == "database_level"

    def describe(self) -> str:
        return self.postgres.describe() if self.db_type == "postgresql" else self.sqlite.describe()


def load_settings(path: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Find, read and validate the configuration (see the module docstring)."""
    env = os.environ if env is None else env
    from docex_ops.config.sources import apply_url, read_raw

    raw, source = read_raw(path, env)
    try:
        settings = settings_from_mapping(raw, source)
    except ConfigError as exc:
        from docex_ops.config.keys import key_lines, with_line
        from docex_ops.config.sources import file_text

        text = file_text(source)
        lines = key_lines(text) if text is not None else {}
        raise ConfigError(with_line(str(exc), source, lines)) from exc
    url = env.get("DOCEX_DATABASE_URL")
    if url:
        settings = apply_url(settings, url)
    return settings


def settings_from_mapping(raw: Mapping[str, Any], source: str = "<mapping>",
                          base_dir: Path | None = None) -> Settings:
    """Validate a parsed DocEX configuration mapping."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    base = (base_dir or Path.cwd()).resolve()
    from docex_ops.config.keys import check_keys

    check_keys(raw)
    security = _section(raw, "security")
    database = _section(raw, "database")
    storage_raw = _section(raw, "storage")
    logging_raw = _section(raw, "logging")
    backup_raw = _section(raw, "backup")
    isolation_raw = _section(raw, "isolation")
    pg_raw = _section(database, "postgres", "database.postgres")
    sq_raw = _section(database, "sqlite", "database.sqlite")

    model = _choice(security, "security.multi_tenancy_model", "database_level", MODELS)
    routing = _bool(security, "security.tenant_database_routing", True)
    db_type_raw = _get(database, "type", "sqlite")
    if not isinstance(db_type_raw, str) or db_type_raw.lower() not in DB_TYPES:
        raise ConfigError(_bad("database.type", db_type_raw, "one of postgresql, postgres, sqlite"))

    postgres = PostgresSettings(
        host=_str(pg_raw, "database.postgres.host", "localhost"),
        port=_int(pg_raw, "database.postgres.port", 5432, low=1, high=65535),
        database=_str(pg_raw, "database.postgres.database", "docex"),
        user=_str(pg_raw, "database.postgres.user", "postgres"),
        password=_opt_str(pg_raw, "database.postgres.password"),
        sslmode=_opt_choice(pg_raw, "database.postgres.sslmode", SSLMODES),
        schema_template=_schema_template(pg_raw, "database.postgres.schema_template",
                                         DEFAULT_SCHEMA_TEMPLATE),
        control_schema=_str(pg_raw, "database.postgres.control_schema", "docex_ops"),
    )
    _check_control_schema(postgres)
    from docex_ops.config.backup import parse_backup
    from docex_ops.config.isolation import allowed_roles
    from docex_ops.config.servers import parse_servers

    servers, directory = parse_servers(pg_raw, postgres)
    postgres = dict(servers)[directory]
    from docex_ops.config.pooler import parse_pooler

    pooler, postgres = parse_pooler(pg_raw, postgres, fleet="servers" in pg_raw)
    from docex_ops.config.citus import parse_citus

    citus = (parse_citus(pg_raw, several_servers="servers" in pg_raw)
             if DB_TYPES[db_type_raw.lower()] == "postgresql" else None)
    path_template = _template(sq_raw, "database.sqlite.path_template", DEFAULT_PATH_TEMPLATE)
    storage_root = _opt_str(sq_raw, "database.sqlite.storage_root")
    sqlite = SqliteSettings(
        path=_resolve(base, _str(sq_raw, "database.sqlite.path", "docex.db")),
        path_template=str(_resolve(base, path_template)),
        storage_root=_resolve(base, storage_root or _template_root(path_template)),
    )
    pool = PoolSettings(
        pool_size=_int(database, "database.pool_size", 5, low=1),
        max_overflow=_int(database, "database.max_overflow", 10, low=0),
        pool_timeout=_number(database, "database.pool_timeout", 30, low=0),
        pool_recycle=_int(database, "database.pool_recycle", 1800, low=-1),
        max_tenant_engines=_int(database, "database.max_tenant_engines", 200, low=1),
        idle_timeout=_number(database, "database.idle_timeout", 600, low=0),
        max_total_connections=_opt_int(database, "database.max_total_connections", low=1),
    )
    documents_root = _opt_str(storage_raw, "storage.documents_root")
    return Settings(model, routing, DB_TYPES[db_type_raw.lower()], postgres, sqlite, pool, source,
                    documents_root=_resolve(base, documents_root or "storage"),
                    audit_file=_audit_file(logging_raw, base),
                    servers=servers if "servers" in pg_raw else (),
                    directory_server=directory,
                    lock_timeout=_duration(database, "database.lock_timeout", 5.0),
                    signing_key_file=parse_backup(backup_raw, base),
                    isolation=IsolationSettings(allowed_roles(isolation_raw)),
                    pooler=pooler,
                    citus=citus)


def default_settings() -> Settings:
    """The embedded default: database-level tenancy on SQLite under ./storage."""
    return settings_from_mapping({}, "<embedded default>")


