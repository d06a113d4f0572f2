"""PostgreSQL: one schema per tenant, reached through search_path."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.exc import DBAPIError


from docex_ops.backends import pg_discover, pg_guard, pg_routing, pg_sql
from docex_ops.backends.base import (
    FOREIGN,
    LOCKED,
    Backend,
    ServerLimits,
    TenantInfo,
    TenantLockedError,
)
from docex_ops.backends.contents import (
    Guard,
    TenantContents,
    describe_foreign,
    foreign_tables,
    refuse_rows,
    refuse_to_provision_foreign,
)
from docex_ops.backends.pg_guard import describe_blockers, is_lock_timeout, set_lock_timeout
from docex_ops.backends.pg_sql import (
    ADVISORY_NAMESPACE,
    DbapiConnection,
    execute_script,
    quote_ident,
)
from docex_ops.backends.postgres_migration import PostgresMigrationMixin
from docex_ops.config.settings import PoolSettings, PostgresSettings, Settings
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.tenancy import schema_name_for, tenant_id_pattern, validate_tenant_id

_T = TypeVar("_T")
ScriptRunner = Callable[["Connection", str], None]
# (discovery connection, versioned schemas, lock timeout) -> (revisions, locked schemas)
RevisionReader = Callable[["Connection", list[str], float],
                          tuple[dict[str, "str | None"], set[str]]]
# Catalog reads gain nothing from JIT, yet at 1,000 schemas discovery's cost estimate
# turns it on, with inlining and optimisation: 0.1-0.3 s of compiling per read.
_NO_JIT = "SET LOCAL jit TO off"


class PostgresBackend(PostgresMigrationMixin, Backend):
    kind = "postgresql"

    def __init__(self, settings: Settings, worker_pool_size: int = 4,
                 script_runner: ScriptRunner = execute_script,
                 schema_settings: tuple[str, ...] = (),
                 revision_reader: RevisionReader = pg_discover.read_revisions,
                 snapshot_covers_rows: bool = True,
                 catalog_settings: tuple[str, ...] = (),
                 split_revision_reads: bool = True) -> None:
        super().__init__(settings)
        # SET LOCAL statements before discovery's catalog read (a Citus coordinator: no
        # shard-hiding filter on every pg_class row).
        self.catalog_settings = (_NO_JIT, *catalog_settings)
        # Whether one transaction's snapshot here sees the tenants' rows as of one moment.
        # Not on a Citus coordinator: each of its statements reads a worker in a worker
        # transaction of its own, so a backup must hold writers off for its dump instead.
        self.snapshot_covers_rows = snapshot_covers_rows
        # How pre-rendered DDL (provisioning, fast-path migrations) is sent: as written,
        # or statement by statement where the server needs it (a Citus coordinator).
        self.script_runner = script_runner
        # SET LOCAL statements run before a tenant's schema is created (a Citus
        # coordinator: schema-based sharding on, so the schema is a distributed one).
        self.schema_settings = schema_settings
        # How discovery reads the versioned schemas' revisions (set-based; on a Citus
        # coordinator on the workers, one round trip per worker).
        self.revision_reader = revision_reader
        # Whether many revisions are read on two connections here (a server opening each
        # version table itself); not where the reader spreads the reads over other servers.
        self.split_revision_reads = split_revision_reads
        self._template = settings.postgres.schema_template
        self._pattern = tenant_id_pattern(self._template)
        self._worker_pool_size = worker_pool_size
        self._admin: Engine | None = None
        self._admin_lock = threading.Lock()
        self._routing_probed = False

    # -- server-level worker connections -------------------------------------------------

    @property
    def admin_engine(self) -> Engine:
        """A small pool of server-level connections for operator work on many tenants."""
        from sqlalchemy import create_engine

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
        # Discovery's connection: a read of settings need not load SQLAlchemy (metrics).
        with self.discovery_connection() as conn:
            row = conn.exec_driver_sql(pg_sql.LIMITS_SQL).all()[0]
            limits = ServerLimits(int(row[0]), int(row[1]), int(row[2]))
            conn.rollback()
        return limits

    def dispose(self) -> None:
        with self._admin_lock:
            if self._admin is not None:
                self._admin.dispose()
                self._admin = None

    # -- tenants ---------------------------------------------------------------------------

    def location(self, tenant_id: str) -> str:
        return schema_name_for(tenant_id, self._template)

    def discover(self, with_size: bool = False) -> list[TenantInfo]:
        return self.discover_and(with_size)[0]

    def discover_and(self, with_size: bool = False,
                     also: Callable[[Any, list[str]], _T] | None = None
                     ) -> tuple[list[TenantInfo], _T | None]:
        """``discover``, and ``also(connection, tenant schemas)`` read on the same
        connection in the catalog read's transaction (a topology's own catalog read,
        without a second connection: a Citus coordinator's placements)."""
        head = self._template.split("{tenant_id}", 1)[0]
        like = head.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.discovery_connection(with_size) as conn:
            for statement in self.catalog_settings:
                conn.exec_driver_sql(statement)
            rows = pg_discover.discover_schemas(conn, like, TABLE_NAMES)
            tenants = {}  # schema -> (tenant id, DocEX tables, versioned, foreign tables)
            for schema, tables, versioned, others in rows:
                match = self._pattern.fullmatch(schema)
                if match:
                    tenants[schema] = (match["tenant_id"], int(tables), bool(versioned),
                                       foreign_tables(others or ()))
            del rows  # 10,000 tuples at 10,000 tenants: not held through the reads below
            extra = also(conn, list(tenants)) if also is not None and tenants else None
            timeout = self.settings.lock_timeout
            revisions, locked = self._read_revisions_split(
                conn, [s for s, t in tenants.items() if t[2]], timeout, with_size)
            sizes, locked_sizes = (pg_discover.read_sizes(conn, list(tenants), timeout)
                                   if with_size else ({}, set()))
            # Who holds the locks, asked on this connection: a role at its connection
            # limit could open no other one.
            held = {s: self.locked_detail(tenants[s][0], conn)
                    for s in (locked | locked_sizes) if s in tenants}
            conn.rollback()
        found = []
        for schema, (tenant_id, tables, _, foreign) in tenants.items():
            condition, detail = None, None
            if foreign is not None:
                condition, detail = FOREIGN, describe_foreign(schema, foreign)
            elif schema in held:
                condition, detail = LOCKED, held[schema]
            found.append(TenantInfo(tenant_id, schema, tables, revisions.get(schema),
                                    sizes.get(schema), condition=condition, detail=detail))
        return found, extra

    def _read_revisions_split(self, conn: Any, schemas: list[str], timeout: float,
                              with_size: bool) -> tuple[dict[str, str | None], set[str]]:
        """The revisions, half of them read on a second connection where there are many:
        a read is mostly the server opening each version table, one core per backend."""
        if not self.split_revision_reads or len(schemas) < pg_discover.SPLIT_REVISIONS_FROM:
            return self.revision_reader(conn, schemas, timeout)
        from concurrent.futures import ThreadPoolExecutor

        half = len(schemas) // 2
        with contextlib.ExitStack() as stack:
            try:
                second = stack.enter_context(self.discovery_connection(with_size))
            except Exception:  # noqa: BLE001 - e.g. no connection slot left: read on one
                return self.revision_reader(conn, schemas, timeout)
            with ThreadPoolExecutor(1) as pool:
                later = pool.submit(self.revision_reader, second, schemas[half:], timeout)
                revisions, locked = self.revision_reader(conn, schemas[:half], timeout)
                more, more_locked = later.result()
        return revisions | more, locked | more_locked

    @contextmanager
    def discovery_connection(self, with_size: bool = False) -> Iterator[Any]:
        """A plain psycopg2 connection while this backend has opened no engine yet (a
        command's first read: ``migrate status`` then never loads SQLAlchemy), else a
        connection of the worker pool. Sizes need the pool's error translation (a lock
        timeout per batch), and a server that refuses the plain connection is reached
        through the pool too, so that failures read exactly as they always have."""
        if with_size or self._admin is not None:
            with self.admin_engine.connect() as conn:
                yield conn
            return
        import psycopg2  # type: ignore[import-untyped]  # no stubs in the required stack

        try:
            raw = psycopg2.connect(**self.settings.postgres.connect_args("docex-ops"))
        except psycopg2.Error:
            with self.admin_engine.connect() as conn:
                yield conn
            return
        try:
            yield DbapiConnection(raw)
        finally:
            raw.close()

    def locked_detail(self, tenant_id: str, conn: Any = None) -> str:
        """One line: the tenant is locked, for how long we waited, and who holds it
        (asked on ``conn`` when given, else on a pool connection)."""
        schema = self.location(tenant_id)
        holders = describe_blockers(self.admin_engine if conn is None else conn, schema)
        return (f"tenant {tenant_id!r}: {schema} is locked by another connection beyond the "
                f"lock timeout ({self.settings.lock_timeout:g}s)"
                + (f": {holders}" if holders else ""))

    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        by_schema = {self.location(t): t for t in tenant_ids}
        with self.admin_engine.connect() as conn:
            revisions, locked = self.revision_reader(conn, list(by_schema),
                                                     self.settings.lock_timeout)
            conn.rollback()
        if locked:
            first = sorted(locked)[0]
            raise TenantLockedError(self.locked_detail(by_schema[first]))
        return {by_schema[s]: rev for s, rev in revisions.items()}

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
        from sqlalchemy.exc import ProgrammingError

        schema = self.location(tenant_id)
        try:
            self.lock_tenant(conn, schema)
            # Through pg_depend's index on the referenced namespace: pg_class has
            # no index on relnamespace, and a scan of it per first access made
            # opening 1,000 tenants quadratic.
            found = conn.exec_driver_sql(
                "SELECT EXISTS (SELECT 1 FROM pg_depend d "
                "WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = n.oid "
                "AND d.classid = 'pg_class'::regclass), "
                "EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid "
                "AND c.relname = ANY(%(t)s)) "
                "FROM pg_namespace n WHERE n.nspname = %(s)s",
                {"s": schema, "t": list(TABLE_NAMES)}).first()
            if found is not None and found[0]:
                if not found[1]:  # none of DocEX's tables: ours (empty, at base) or foreign?
                    self._refuse_foreign(conn, tenant_id, schema)
                return False
            if found is None:
                self.create_schema(conn, schema)
            conn.exec_driver_sql(f"SET LOCAL search_path TO {quote_ident(schema)}")
            if ddl.strip():
                self.script_runner(conn, ddl)
        except ProgrammingError as exc:
            raise RuntimeError(self._explain_create_failure(tenant_id, schema, exc)) from exc
        return True

    def create_schema(self, conn: Connection, schema: str) -> None:
        """CREATE SCHEMA of a tenant (or of a restore's copy of one) in the caller's
        transaction, with this server's settings for tenant schemas."""
        for statement in self.schema_settings:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(f"CREATE SCHEMA {quote_ident(schema)}")

    def _refuse_foreign(self, conn: Connection, tenant_id: str, schema: str) -> None:
        tables = conn.exec_driver_sql(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p')",
            {"s": schema}).scalars().all()
        refuse_to_provision_foreign(tenant_id, schema, tables)

    def drop(self, tenant_id: str, guard: Guard | None = None) -> None:
        with self.admin_engine.begin() as conn:
            self.drop_in(conn, tenant_id, guard)

    def drop_in(self, conn: Connection, tenant_id: str, guard: Guard | None = None) -> None:
        """``drop`` inside the caller's transaction on this server: the tenant's tables are
        locked, ``guard`` sees what they hold, the schema is dropped and proven to have
        taken nothing outside with it (pg_guard), all before the caller commits."""
        schema = self.location(tenant_id)
        with self.locked_act(tenant_id):
            set_lock_timeout(conn, self.settings.lock_timeout)
            self.lock_tenant(conn, schema)
            found = pg_guard.lock_and_read(conn, schema)
            if found is None:
                return
            held, contents = found
            (guard or refuse_rows)(contents)
            pg_guard.drop_schema(conn, held)
            pg_guard.verify_unchanged(self.admin_engine, held)

    def lock_contents(self, conn: Connection, tenant_id: str) -> TenantContents:
        schema = self.location(tenant_id)
        with self.locked_act(tenant_id):
            found = pg_guard.lock_and_read(conn, schema, dependents=False)
        return found[1] if found is not None else TenantContents(schema, {})

    def read_contents(self, tenant_id: str) -> TenantContents | None:
        schema = self.location(tenant_id)
        with self.locked_act(tenant_id), self.admin_engine.connect() as conn:
            set_lock_timeout(conn, self.settings.lock_timeout)
            contents = pg_guard.read_contents(conn, schema)
            conn.rollback()
        return contents

    @contextmanager
    def locked_act(self, tenant_id: str) -> Iterator[None]:
        """A lock wait beyond lock_timeout becomes TenantLockedError naming the holders."""
        from sqlalchemy.exc import DBAPIError

        try:
            yield
        except DBAPIError as exc:
            if not is_lock_timeout(exc):
                raise
            raise TenantLockedError(f"{self.locked_detail(tenant_id)}; nothing was "
                                    "changed") from exc

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
        from sqlalchemy import create_engine, event

        schema = self.location(tenant_id)
        pooler = self.settings.pooler
        pg = self.application_settings()
        self._probe_routing_once(pg, pooler.per_transaction)
        engine = create_engine(
            pg.url(application_name=f"docex:{validate_tenant_id(tenant_id)}"),
            pool_size=pool.pool_size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.pool_timeout,
            pool_recycle=pool.pool_recycle,
            connect_args=pg_routing.connect_args(tenant_id, schema, pooler.per_transaction),
        )
        if not pooler.per_transaction:
            event.listen(engine, "connect", pg_routing.connect_check(tenant_id, schema))
        return engine

    def application_settings(self) -> PostgresSettings:
        """Where tenant engines connect: the pooler when one is configured, else the
        server itself (``settings.postgres`` is always the direct endpoint)."""
        app = self.settings.pooler.application
        pg = self.settings.postgres
        return pg if app is None else replace(pg, host=app.host, port=app.port)

    def _probe_routing_once(self, pg: PostgresSettings, per_transaction: bool) -> None:
        """Find out once, before the first tenant engine, instead of failing per tenant:
        connect-time routing needs an endpoint that honours ``options``; per-transaction
        routing a pooler that lets transactions through (not statement mode)."""
        with self._admin_lock:
            if self._routing_probed:
                return
            dsn = {"host": pg.host, "port": pg.port, "user": pg.user,
                   "password": pg.password, "dbname": pg.database, "sslmode": pg.sslmode,
                   "application_name": "docex-ops-probe"}
            if per_transaction:
                self._routing_probed = pg_routing.probe_transactions(dsn)
                return
            pg_routing.probe_startup(dsn)
            self._routing_probed = True

__all__ = ["PostgresBackend", "execute_script", "quote_ident"]
