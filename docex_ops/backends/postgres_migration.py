"""PostgreSQL migration support: per-tenant transactions, locks, control tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


from docex_ops.backends.base import TenantLockedError
from docex_ops.backends.catalog import Catalog, pg_catalog
from docex_ops.backends.pg_sql import (
    ADVISORY_NAMESPACE,
    quote_ident,
)
from docex_ops.config.settings import Settings


def _ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


# The tenant's revision in ONE round trip, NULL when it has no version table:
# CASE never evaluates query_to_xml (dynamic SQL) when the table is missing.
_VERSION_SQL = (
    "CASE WHEN to_regclass('alembic_version') IS NULL THEN NULL ELSE "
    "(xpath('/row/v/text()', query_to_xml("
    "'SELECT max(version_num) AS v FROM alembic_version', false, true, '')))[1]::text END")
_OWNER_SQL = ("(SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE c.oid = to_regclass('alembic_version'))")


class PostgresMigrationMixin:
    """Migration support: per-tenant transactions, locks, control tables."""

    settings: Settings
    script_runner: Callable[[Connection, str], None]  # set by PostgresBackend

    # Provided by PostgresBackend.
    @property
    def admin_engine(self) -> Engine:  # pragma: no cover
        raise NotImplementedError

    def location(self, tenant_id: str) -> str:  # pragma: no cover
        raise NotImplementedError

    @contextmanager
    def migration_connection(self, tenant_id: str, lock_timeout: float | None = None,
                             statement_timeout: float | None = None) -> Iterator[Connection]:
        schema = self.location(tenant_id)
        # Lock, route and timeouts in one round trip; every setting is LOCAL, so
        # it ends with the transaction and the pooled connection comes back clean.
        settings = ["set_config('search_path', %(path)s, true)"]
        params: dict[str, object] = {"ns": ADVISORY_NAMESPACE, "s": schema,
                                     "path": quote_ident(schema)}
        for name, value in (("lock_timeout", lock_timeout),
                            ("statement_timeout", statement_timeout)):
            if value is not None:
                settings.append(f"set_config('{name}', %({name})s, true)")
                params[name] = _ms(value)
        with self.admin_engine.connect() as conn, conn.begin():
            locked = conn.exec_driver_sql(
                "SELECT pg_try_advisory_xact_lock(%(ns)s, hashtext(%(s)s)), "
                + ", ".join(settings), params).scalar()
            if not locked:
                raise TenantLockedError(
                    f"tenant {tenant_id!r} is locked by another docex-ops runner")
            yield conn

    def execute_script(self, conn: Connection, sql: str) -> None:
        self.script_runner(conn, sql)

    def current_revision(self, conn: Connection) -> str | None:
        revision = conn.exec_driver_sql(f"SELECT {_VERSION_SQL}").scalar()
        return None if revision is None else str(revision)

    def check_migrated(self, conn: Connection, tenant_id: str, expected: str | None,
                       deep: bool = False) -> None:
        revision, owner = conn.exec_driver_sql(f"SELECT {_VERSION_SQL}, {_OWNER_SQL}").one()
        if revision != expected:
            raise RuntimeError(f"tenant {tenant_id!r} ended at {revision or 'base'}, "
                               f"expected {expected or 'base'}; rolled back")
        if expected is not None and owner != self.location(tenant_id):
            raise RuntimeError(f"tenant {tenant_id!r}: the version table written is in schema "
                               f"{owner!r}, not the tenant's; rolled back")

    def control_engine(self) -> Engine:
        schema = self.settings.postgres.control_schema
        with self.admin_engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        return self.admin_engine.execution_options(schema_translate_map={None: schema})

    def catalog(self, tenant_id: str) -> Catalog:
        with self.admin_engine.connect() as conn:
            result = pg_catalog(conn, self.location(tenant_id))
            conn.rollback()
        return result
