"""Load and validate the DocEX configuration into one frozen Settings object.

Lookup order: ``--config PATH``, ``$DOCEX_CONFIG``, ``~/.docex/config.yaml``,
else the embedded default (SQLite under ``./storage``). ``$DOCEX_DATABASE_URL``
replaces the connection block. Every bad value fails here, with one message
naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MODELS = ("database_level", "row_level", "none")
DB_TYPES = {"postgresql": "postgresql", "postgres": "postgresql", "sqlite": "sqlite"}
DEFAULT_SCHEMA_TEMPLATE = "tenant_{tenant_id}"
DEFAULT_PATH_TEMPLATE = "storage/tenant_{tenant_id}/docex.db"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


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
        return URL.create(
            "postgresql+psycopg2",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=query,
        )

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
    raw, source = _read_raw(path, env)
    settings = settings_from_mapping(raw, source)
    url = env.get("DOCEX_DATABASE_URL")
    if url:
        settings = _apply_url(settings, url)
    return settings


def settings_from_mapping(raw: Mapping[str, Any], source: str = "<mapping>",
                          base_dir: Path | None = None) -> Settings:
    """Validate a parsed DocEX configuration mapping."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    base = (base_dir or Path.cwd()).resolve()
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
        schema_template=_template(pg_raw, "database.postgres.schema_template",
                                  DEFAULT_SCHEMA_TEMPLATE),
        control_schema=_str(pg_raw, "database.postgres.control_schema", "docex_ops"),
    )
    _check_control_schema(postgres)
    from docex_ops.config.backup import parse_backup
    from docex_ops.config.isolation import allowed_roles
    from docex_ops.config.servers import parse_servers

    servers, directory = parse_servers(pg_raw, postgres)
    postgres = dict(servers)[directory]
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
                    isolation=IsolationSettings(allowed_roles(isolation_raw)))


def default_settings() -> Settings:
    """The embedded default: database-level tenancy on SQLite under ./storage."""
    return settings_from_mapping({}, "<embedded default>")


def _read_raw(path: str | os.PathLike[str] | None,
              env: Mapping[str, str]) -> tuple[Mapping[str, Any], str]:
    if path is not None:
        chosen, key = Path(path), "--config"
    elif env.get("DOCEX_CONFIG"):
        chosen, key = Path(env["DOCEX_CONFIG"]), "$DOCEX_CONFIG"
    else:
        chosen, key = Path.home() / ".docex" / "config.yaml", ""
        if not chosen.exists():
            return {}, "<embedded default>"
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{key or 'config'}: cannot read {chosen}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{chosen}: not valid YAML: {exc}") from exc
    return (data or {}), str(chosen)


def _apply_url(settings: Settings, url_text: str) -> Settings:
    """``$DOCEX_DATABASE_URL`` replaces the connection block, keeping the templates."""
    from dataclasses import replace

    try:
        url = make_url(url_text)
    except ArgumentError as exc:
        raise ConfigError(_bad("$DOCEX_DATABASE_URL", "<unparseable>",
                               "a URL such as postgresql://user@host:5432/db")) from exc
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres") and len(settings.servers) > 1:
        raise ConfigError("$DOCEX_DATABASE_URL names one server but database.postgres.servers "
                          "lists several; unset the variable or edit the servers in the file")
    if backend in ("postgresql", "postgres"):
        pg = replace(
            settings.postgres,
            host=url.host or settings.postgres.host,
            port=url.port or settings.postgres.port,
            database=url.database or settings.postgres.database,
            user=url.username or settings.postgres.user,
            password=url.password if url.password is not None else settings.postgres.password,
            sslmode=str(url.query.get("sslmode", settings.postgres.sslmode or "")) or None,
        )
        servers = ((settings.directory_server, pg),) if settings.servers else ()
        return replace(settings, db_type="postgresql", postgres=pg, servers=servers)
    if backend == "sqlite" and url.database:
        path = Path(url.database).resolve()
        sq = replace(settings.sqlite, path=path)
        return replace(settings, db_type="sqlite", sqlite=sq)
    raise ConfigError(_bad("$DOCEX_DATABASE_URL", f"{backend}://...",
                           "a postgresql:// or sqlite:/// URL"))


def _bad(key: str, value: object, allowed: str) -> str:
    return f"{key}: invalid value {value!r}; expected {allowed}"


def _section(parent: Mapping[str, Any], name: str, key: str | None = None) -> Mapping[str, Any]:
    value = parent.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(_bad(key or name, value, "a mapping"))
    return value


def _get(section: Mapping[str, Any], key: str, default: Any) -> Any:
    value = section.get(key.rsplit(".", 1)[-1])
    return default if value is None else value


def _str(section: Mapping[str, Any], key: str, default: str) -> str:
    value = _get(section, key, default)
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ConfigError(_bad(key, value, "a non-empty string"))
    return str(value)


def _opt_str(section: Mapping[str, Any], key: str) -> str | None:
    value = _get(section, key, None)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        shown = "<hidden>" if key.endswith("password") else value
        raise ConfigError(_bad(key, shown, "a string"))
    return str(value)


def _int(section: Mapping[str, Any], key: str, default: int, low: int | None = None,
         high: int | None = None) -> int:
    value = _get(section, key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ConfigError(_bad(key, value, "an integer" + _range(low, high)))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(_bad(key, value, "an integer" + _range(low, high)))
    return value


def _opt_int(section: Mapping[str, Any], key: str, low: int) -> int | None:
    if _get(section, key, None) is None:
        return None
    return _int(section, key, low, low=low)


def _number(section: Mapping[str, Any], key: str, default: float, low: float) -> float:
    value = _get(section, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ConfigError(_bad(key, value, f"a number >= {low:g}"))
    return float(value)


_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
                   None: 1.0}


def parse_duration(text: object) -> float:
    """Seconds in a duration written as PostgreSQL writes them (``500ms``, ``5s``,
    ``10min``, ``1h``, ``1d``; a bare number is seconds). ValueError says what is allowed."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"{text!r} is negative")
        return float(text)
    match = _DURATION_RE.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 500ms, 5s, 10min, 1h "
                         "(a bare number is seconds)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _duration(section: Mapping[str, Any], key: str, default: float) -> float:
    value = _get(section, key, default)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(_bad(key, value, "a duration such as 500ms, 5s, 10min")) from exc


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return ""


def _bool(section: Mapping[str, Any], key: str, default: bool) -> bool:
    value = _get(section, key, default)
    if not isinstance(value, bool):
        raise ConfigError(_bad(key, value, "true or false"))
    return value


def _choice(section: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _get(section, key, default)
    if value not in allowed:
        raise ConfigError(_bad(key, value, "one of " + ", ".join(allowed)))
    return str(value)


def _opt_choice(section: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = _get(section, key, None)
    if value is None:
        return None
    if value not in allowed:
        raise ConfigError(_bad(key, value, "one of " + ", ".join(allowed)))
    return str(value)


def _template(section: Mapping[str, Any], key: str, default: str) -> str:
    value = _str(section, key, default)
    if value.count("{tenant_id}") != 1:
        raise ConfigError(_bad(key, value, "a string containing {tenant_id} exactly once"))
    try:
        value.format(tenant_id="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(_bad(key, value, "no placeholder other than {tenant_id}")) from exc
    return value


def _check_control_schema(postgres: PostgresSettings) -> None:
    """docex-ops' own schema must be a plain name that can never be a tenant's."""
    from docex_ops.tenancy import tenant_id_pattern

    name = postgres.control_schema
    key = "database.postgres.control_schema"
    if not name.isidentifier() or not name.isascii() or name != name.lower() or len(name) > 63:
        raise ConfigError(_bad(key, name, "a lower-case identifier of at most 63 characters"))
    if name.startswith("pg_") or name in ("public", "information_schema"):
        raise ConfigError(_bad(key, name, "a name that is not reserved by PostgreSQL"))
    if tenant_id_pattern(postgres.schema_template).fullmatch(name):
        raise ConfigError(_bad(key, name, "a name that does not match schema_template "
                                          f"{postgres.schema_template!r}"))


def _audit_file(section: Mapping[str, Any], base: Path) -> Path | None:
    value = _opt_str(section, "logging.audit_file")
    if value is None:
        return None
    if value.strip() == "":
        raise ConfigError(_bad("logging.audit_file", value, "a file path"))
    path = _resolve(base, value)
    if path.is_dir():
        raise ConfigError(_bad("logging.audit_file", value,
                               "a file path, not a directory (e.g. audit/docex-ops.jsonl)"))
    return path


def _template_root(path_template: str) -> str:
    """The directories of a path template before the one that holds {tenant_id}."""
    head = path_template.split("{tenant_id}", 1)[0]
    root = head.rsplit("/", 1)[0] if "/" in head else "."
    return root or "/"


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
