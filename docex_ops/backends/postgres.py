"""PostgreSQL: one schema per tenant, reached through search_path."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, ProgrammingError

from docex_ops.backends import pg_activity
from docex_ops.backends.base import Backend, ServerLimits, TenantInfo, chunks
from docex_ops.backends.pg_sql import ADVISORY_NAMESPACE, execute_script, quote_ident
from docex_ops.backends.postgres_migration import PostgresMigrationMixin
from docex_ops.config import PoolSettings, Settings
from docex_ops.schema import TABLE_NAMES
from docex_ops.tenancy import schema_name_for, tenant_id_pattern, validate_tenant_id

REVISION_BATCH = 1000

# A session-local function: reads many tenants' version tables in one round
# trip without a giant UNION (which the planner chokes on at ~10,000 schemas)
# and without creating anything persistent.
_REVISIONS_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.docex_ops_revisions(schemas text[])
RETURNS TABLE(schema_name text, version_num text) LANGUAGE plpgsql AS $f$
DECLARE s text;
BEGIN
  FOREACH s IN ARRAY schemas LOOP
    BEGIN
      RETURN QUERY EXECUTE format(
        'SELECT %L::text, max(version_num)::text FROM %I.alembic_version', s, s);
    EXCEPTION WHEN undefined_table OR invalid_schema_name THEN
      schema_name := s; version_num := NULL; RETURN NEXT;
    END;
  END LOOP;
END $f$
"""

_DISCOVER_SQL = """
SELECT n.nspname,
       (SELECT count(*) FROM pg_class c
         WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
           AND c.relname = ANY(%(tables)s)) AS tables,
       EXISTS (SELECT 1 FROM pg_class v
                WHERE v.relnamespace = n.oid AND v.relname = 'alembic_version'
                  AND v.relkind = 'r') AS versioned
  FROM pg_namespace n
 WHERE n.nspname LIKE %(like)s
 ORDER BY n.nspname
"""

# pg_total_relation_size locks every table and index it measures, so sizes are
# read in batches, each in its own transaction (see _read_revisions).
_SIZES_SQL = """
SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)
  FROM pg_namespace n LEFT JOIN pg_class c
       ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
 WHERE n.nspname = ANY(%(s)s)
 GROUP BY n.nspname
"""
SIZE_BATCH = 100


class PostgresBackend(PostgresMigrationMixin, Backend):
    kind = "postgresql"

    def __init__(self, settings: Settings, worker_pool_size: int = 4) -> None:
        super().__init__(settings)
        self._template = settings.postgres.schema_template
        self._pattern = tenant_id_pattern(self._template)
        self._worker_pool_size = worker_pool_size
        self._admin: Engine | None = None
        self._admin_lock = threading.Lock()

    # -- server-level worker connections -------------------------------------------------

    @property
    def admin_engine(self) -> Engine:
        """A small pool of server-level connections for operator work on many tenants."""
        with self._admin_lock:
            if self._admin is None:
                self._admin = create_engine(
                    self.settings.postgres.url(application_name="docex-ops"),
                    pool_size=self._worker_pool_size,
                    max_overflow=self._worker_pool_size,
                    pool_timeout=self.settings.pool.pool_timeout,
                    pool_recycle=self.settings.pool.pool_recycle,
                )
            return self._admin

    @contextmanager
    def tenant_connection(self, tenant_id: str) -> Iterator[Connection]:
        schema = self.location(tenant_id)
        with self.admin_engine.begin() as conn:
            # SET LOCAL: the route ends with the transaction, so a pooled
            # connection never carries one tenant's search_path to the next.
            conn.exec_driver_sql(f"SET LOCAL search_path TO {quote_ident(schema)}")
            yield conn

    def server_limits(self) -> ServerLimits:
        with self.admin_engine.connect() as conn:
            limits = pg_activity.read_limits(conn)
            conn.rollback()
        return limits

    def server_connections(self) -> list[pg_activity.ServerConnection]:
        """Every client backend on the server (pg_stat_activity), except our own query's."""
        with self.admin_engine.connect() as conn:
            found = pg_activity.read_connections(conn)
            conn.rollback()
        return found

    def terminate_idle(self, pids: list[int], idle_for_s: float) -> list[int]:
        """pg_terminate_backend on those of ``pids`` that are still idle docex tenant
        connections of this database; returns the pids terminated."""
        with self.admin_engine.begin() as conn:
            return pg_activity.terminate_idle(conn, pids, idle_for_s)

    def dispose(self) -> None:
        with self._admin_lock:
            if self._admin is not None:
                self._admin.dispose()
                self._admin = None

    # -- tenants ---------------------------------------------------------------------------

    def location(self, tenant_id: str) -> str:
        return schema_name_for(tenant_id, self._template)

    def files_dir(self, tenant_id: str) -> Path:
        # Named after the schema, so the directory and the schema match one to one.
        root = self.settings.documents_root or Path.cwd() / "storage"
        return root.resolve() / self.location(tenant_id) / "files"

    def discover(self, with_size: bool = False) -> list[TenantInfo]:
        head = self._template.split("{tenant_id}", 1)[0]
        like = head.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.admin_engine.connect() as conn:
            rows = conn.exec_driver_sql(
                _DISCOVER_SQL, {"tables": list(TABLE_NAMES), "like": like}).all()
            tenants = {}  # schema -> (tenant id, DocEX tables, versioned)
            for schema, tables, versioned in rows:
                match = self._pattern.fullmatch(schema)
                if match:
                    tenants[schema] = (match["tenant_id"], int(tables), bool(versioned))
            revisions = self._read_revisions(conn, [s for s, t in tenants.items() if t[2]])
            sizes = self._read_sizes(conn, list(tenants)) if with_size else {}
            conn.rollback()
        return [TenantInfo(tenant_id, schema, tables, revisions.get(schema), sizes.get(schema))
                for schema, (tenant_id, tables, _) in tenants.items()]

    @staticmethod
    def _read_sizes(conn: Connection, schemas: list[str]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for batch in chunks(schemas, SIZE_BATCH):
            sizes.update((schema, int(size)) for schema, size in
                         conn.exec_driver_sql(_SIZES_SQL, {"s": batch}))
            conn.commit()
        return sizes

    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        by_schema = {self.location(t): t for t in tenant_ids}
        with self.admin_engine.connect() as conn:
            revisions = self._read_revisions(conn, list(by_schema))
            conn.rollback()
        return {by_schema[s]: rev for s, rev in revisions.items()}

    def _read_revisions(self, conn: Connection, schemas: list[str]) -> dict[str, str | None]:
        if not schemas:
            return {}
        execute_script(conn, _REVISIONS_FUNCTION)
        conn.commit()
        result: dict[str, str | None] = {}
        for batch in chunks(schemas, REVISION_BATCH):
            for schema, revision in conn.exec_driver_sql(
                "SELECT * FROM pg_temp.docex_ops_revisions(%(s)s)", {"s": batch}
            ):
                result[schema] = revision
            # Each version table read holds a lock until the transaction ends; the
            # server's lock table (max_locks_per_transaction x max_connections,
            # 6,400 by default) would run out at a few thousand tenants.
            conn.commit()
        return result

    def exists(self, tenant_id: str) -> bool:
        schema = self.location(tenant_id)
        with self.admin_engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT 1 FROM pg_namespace WHERE nspname = %(s)s", {"s": schema}).first()
            conn.rollback()
        return row is not None

    def create(self, tenant_id: str, ddl: str) -> bool:
        with self.admin_engine.begin() as conn:
            return self.create_in(conn, tenant_id, ddl)

    def create_in(self, conn: Connection, tenant_id: str, ddl: str) -> bool:
        """``create`` inside the caller's transaction on this server (the fleet's tenant
        directory is written in the same transaction when it lives on this server)."""
        schema = self.location(tenant_id)
        try:
            self.lock_tenant(conn, schema)
            # Through pg_depend's index on the referenced namespace: pg_class has
            # no index on relnamespace, and a scan of it per first access made
            # opening 1,000 tenants quadratic.
            relations = conn.exec_driver_sql(
                "SELECT EXISTS (SELECT 1 FROM pg_depend d "
                "WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = n.oid "
                "AND d.classid = 'pg_class'::regclass) "
                "FROM pg_namespace n WHERE n.nspname = %(s)s", {"s": schema}).scalar()
            if relations:
                return False
            if relations is None:
                conn.exec_driver_sql(f"CREATE SCHEMA {quote_ident(schema)}")
            conn.exec_driver_sql(f"SET LOCAL search_path TO {quote_ident(schema)}")
            if ddl.strip():
                execute_script(conn, ddl)
        except ProgrammingError as exc:
            raise RuntimeError(self._explain_create_failure(tenant_id, schema, exc)) from exc
        return True

    def drop(self, tenant_id: str) -> None:
        with self.admin_engine.begin() as conn:
            self.drop_in(conn, tenant_id)

    def drop_in(self, conn: Connection, tenant_id: str) -> None:
        """``drop`` inside the caller's transaction on this server."""
        schema = self.location(tenant_id)
        self.lock_tenant(conn, schema)
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")

    @staticmethod
    def lock_tenant(conn: Connection, schema: str) -> None:
        """Serialise provisioning/dropping/migrating one tenant across processes."""
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%(ns)s, hashtext(%(s)s))",
            {"ns": ADVISORY_NAMESPACE, "s": schema},
        )

    def _explain_create_failure(self, tenant_id: str, schema: str, exc: DBAPIError) -> str:
        pgcode = getattr(exc.orig, "pgcode", None)
        cause = str(exc.orig).strip().splitlines()[0]
        if pgcode == "42501":  # insufficient_privilege
            pg = self.settings.postgres
            return (f"tenant {tenant_id!r}: cannot create schema {schema!r}: {cause}; "
                    f"grant the right with: GRANT CREATE ON DATABASE {quote_ident(pg.database)} "
                    f"TO {quote_ident(pg.user)};")
        return f"tenant {tenant_id!r}: creating schema {schema!r} failed: {cause}"

    def create_tenant_engine(self, tenant_id: str, pool: PoolSettings) -> Engine:
        schema = self.location(tenant_id)
        engine = create_engine(
            self.settings.postgres.url(application_name=f"docex:{validate_tenant_id(tenant_id)}"),
            pool_size=pool.pool_size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.pool_timeout,
            pool_recycle=pool.pool_recycle,
            # Routed at connect time by the server itself: no extra round trip per
            # checkout, and nothing a session can forget to set.
            connect_args={"options": f"-c search_path={schema}"},
        )
        return engine


__all__ = ["PostgresBackend", "execute_script", "quote_ident"]
