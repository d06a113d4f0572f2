"""PostgreSQL archives: ``pg_dump --format=custom`` of tenant schemas, restored by pg_restore.

Dumping: one REPEATABLE READ transaction exports a snapshot; pg_dump runs on
it (``--snapshot``) and the checksums are computed on the same snapshot, so
the manifest describes exactly what the archive holds, even while DocEX
writes. On a Citus coordinator one snapshot does not do that (each statement reads
the worker in a worker transaction of its own, pg_dump's COPY included), so there the
exporting transaction first takes SHARE locks on the tenants' tables, which Citus
propagates to every node with metadata: writers wait for the dump's end, and pg_dump
and the checksums read the same rows. Several schemas go into one pg_dump
(``-n a -n b ...``) because each pg_dump process pays for reading the whole catalog;
the batch is sized to the server's lock budget (pg_dump locks every table it dumps).

Restoring: the archive's table of contents is checked first (pg_toc); the
copy is built in a held scratch schema from docex-ops' own DDL for the
manifest's revision and filled with the archive's rows only (pg_staging); it
is checked there, then swapped in under the target name in one transaction
(drop the old, rename the scratch). The live tenant is therefore untouched
until the restored copy has been verified.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from docex_ops.backends import pg_guard, scratch
from docex_ops.backends.base import TenantLockedError
from docex_ops.backends.contents import Guard, refuse_rows
from docex_ops.backends.digest import (
    TableDigest,
    digest_query,
    digest_schema,
    parse_digest,
    table_columns,
)
from docex_ops.backends.pg_guard import ms, set_lock_timeout
from docex_ops.backends.pg_sql import transaction as _transaction
from docex_ops.backends.pg_tools import (
    ArchiveToolError,
    PgTool,
    find_tool,
    last_lines,
    require_can_dump,
    tool_env,
)
from docex_ops.backends.postgres import PostgresBackend, quote_ident
from docex_ops.backup import pg_staging
from docex_ops.backup.archive import (
    ArchiveContents,
    DumpResult,
    RestoreSpec,
    Staging,
    TenantArchiver,
    TenantSnapshot,
)
from docex_ops.backup.archivers import BackupKind
from docex_ops.backup.pg_toc import check_toc
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.tenancy import check_schema_name

LOCKS_PER_TENANT = len(TABLE_NAMES) + 1  # + alembic_version
MAX_BATCH = 250



# The tables pg_dump will read in the asked-for schemas (``--schema`` dumps them all).
_TABLES_SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p') ORDER BY 1
"""

_SNAPSHOT_BEGIN = ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                   "SET TRANSACTION SNAPSHOT '{snapshot}'; SET LOCAL DateStyle TO 'ISO, YMD'; "
                   "SET LOCAL TimeZone TO 'UTC'; SET LOCAL lock_timeout TO '{lock_timeout}'; ")


class PostgresArchiver(TenantArchiver):
    kind = "postgresql"
    extension = ".pgdump"

    def __init__(self, backend: PostgresBackend, pg_bin: str | None = None) -> None:
        self.backend = backend
        self.pg = backend.settings.postgres
        self.pg_bin = pg_bin
        self._engine: Engine | None = None

    @property
    def _lock_wait(self) -> str:
        """How long pg_dump and the digests wait for an application's lock."""
        return ms(self.backend.settings.lock_timeout)

    @property
    def engine(self) -> Engine:
        # NullPool: each batch opens its own connections; no pool to size against --jobs.
        # AUTOCOMMIT: transactions are begun explicitly, because the isolation level
        # and SET TRANSACTION SNAPSHOT must come first in them.
        if self._engine is None:
            self._engine = create_engine(self.pg.url(application_name="docex-ops-backup"),
                                         poolclass=NullPool, isolation_level="AUTOCOMMIT")
        return self._engine

    def server_version(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            num = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
            text = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        return num // 10000, text

    def batch_size(self, jobs: int) -> int:
        """Half the server's shared lock table, split between the concurrent pg_dumps."""
        with self.engine.connect() as conn:
            per_xact, conns, prepared = (int(conn.exec_driver_sql(f"SHOW {name}").scalar_one())
                                         for name in ("max_locks_per_transaction",
                                                      "max_connections",
                                                      "max_prepared_transactions"))
        budget = per_xact * (conns + prepared) // 2
        # Where writers are held off (Citus), the exporter holds a second set of locks.
        per_tenant = LOCKS_PER_TENANT * (1 if self.backend.snapshot_covers_rows else 2)
        return max(1, min(MAX_BATCH, budget // (per_tenant * max(1, jobs))))

    # -- dump ------------------------------------------------------------------------------

    def dump(self, tenant_ids: list[str], archive: Path) -> DumpResult:
        major, server_text = self.server_version()
        tool = find_tool("pg_dump", self.pg_bin)
        require_can_dump(tool, major, server_text)
        schemas = {t: self.backend.location(t) for t in tenant_ids}
        with self.engine.connect() as exporter:
            exporter.exec_driver_sql(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if not self.backend.snapshot_covers_rows and not self.writers_held:
                self._hold_writers(exporter, schemas)
            snapshot = str(exporter.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            proc = self._start_pg_dump(tool, snapshot, list(schemas.values()), archive)
            try:
                tenants = self._digest_snapshot(snapshot, schemas)
            finally:
                _, stderr = proc.communicate()
            exporter.exec_driver_sql("COMMIT")
        if proc.returncode != 0:
            archive.unlink(missing_ok=True)
            message = (f"pg_dump of {', '.join(schemas.values())} failed "
                       f"(exit {proc.returncode}): {last_lines(stderr)}")
            if b"LOCK TABLE" in stderr and b"timeout" in stderr:
                # --lock-wait-timeout: an application lock outlasted the lock timeout.
                raise TenantLockedError(f"locked: {message}")
            raise ArchiveToolError(message)
        return DumpResult(archive, tenants, tool.version, server_text)

    def _hold_writers(self, exporter: Connection, schemas: dict[str, str]) -> None:
        """SHARE-lock every table of ``schemas`` in the exporting transaction, until its
        end: no write can commit between pg_dump's reads and the checksums' (reads and
        SELECT ... FOR UPDATE go on). Waits at most the lock timeout for a writer."""
        tables = [str(t) for t in exporter.exec_driver_sql(
            _TABLES_SQL, {"schemas": list(schemas.values())}).scalars()]
        if not tables:
            return  # a missing schema: the digest names it
        # Citus takes the locks on every node with metadata too: the lock timeout goes with
        # them (SET LOCAL is sent on to the workers' transactions).
        pg_guard.set_lock_timeout(exporter, self.backend.settings.lock_timeout,
                                  to_workers=True)
        # A worker's lock timeout is told by the notice just before Citus's error: none
        # older than this statement may be taken for it.
        del exporter.connection.dbapi_connection.notices[:]  # type: ignore[union-attr]
        try:
            exporter.exec_driver_sql(f"LOCK TABLE {', '.join(tables)} IN SHARE MODE"
                                     .replace("%", "%%"))
        except Exception as exc:
            if not pg_guard.is_lock_timeout(exc):
                raise
            exporter.exec_driver_sql("ROLLBACK")
            raise TenantLockedError(
                f"locked: a lock on {', '.join(schemas.values())} outlasted the lock timeout "
                f"({self._lock_wait}) while holding writers off for the dump") from exc

    def _start_pg_dump(self, tool: PgTool, snapshot: str, schemas: list[str],
                       archive: Path) -> subprocess.Popen[bytes]:
        args = [tool.path, "--format=custom", f"--file={archive}", f"--snapshot={snapshot}",
                f"--lock-wait-timeout={self._lock_wait}", "--no-password"]
        for schema in schemas:
            args += ["--schema", schema]
        return subprocess.Popen(args, env=tool_env(self.pg, "backup"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _digest_snapshot(self, snapshot: str, schemas: dict[str, str]) -> list[TenantSnapshot]:
        result = []
        with self.engine.connect() as conn:
            columns = table_columns(conn, list(schemas.values()))
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            for tenant_id, schema in schemas.items():
                if not columns.get(schema):
                    raise ArchiveToolError(f"tenant {tenant_id!r}: schema {schema!r} has no "
                                           "DocEX tables (it does not exist or is empty)")
                # One short transaction per tenant on the exported snapshot, sent in one
                # round trip: its table locks are released at once instead of piling up
                # for the whole batch beside pg_dump's own.
                try:
                    cursor.execute(_SNAPSHOT_BEGIN.format(snapshot=snapshot,
                                                          lock_timeout=self._lock_wait)
                                   + digest_query(schema, columns[schema]))
                except Exception as exc:
                    if not pg_guard.is_lock_timeout(exc):
                        raise
                    raise TenantLockedError(
                        f"tenant {tenant_id!r}: locked: a lock on {schema} outlasted the lock "
                        f"timeout ({self._lock_wait}) while digesting it") from exc
                rows = cursor.fetchall()
                cursor.execute("COMMIT")
                tables, revision = parse_digest(rows)
                result.append(TenantSnapshot(tenant_id, schema, revision, tables))
            cursor.close()
        return result

    @contextmanager
    def _snapshot_connection(self, snapshot: str | None) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if snapshot is not None:
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            conn.exec_driver_sql("SET LOCAL DateStyle TO 'ISO, YMD'")
            conn.exec_driver_sql("SET LOCAL TimeZone TO 'UTC'")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")

    def digest_tenant(self, tenant_id: str) -> dict[str, TableDigest]:
        with self._snapshot_connection(None) as conn:
            return digest_schema(conn, self.backend.location(tenant_id))[0]

    # -- restore ---------------------------------------------------------------------------

    def inspect(self, spec: RestoreSpec) -> ArchiveContents:
        restore = find_tool("pg_restore", self.pg_bin)
        listing = pg_staging.archive_listing(restore.path, spec.archive,
                                             tool_env(self.pg, "restore"))
        return check_toc(listing, spec)

    @contextmanager
    def staged(self, spec: RestoreSpec, contents: ArchiveContents,
               target_tenant_id: str | None) -> Iterator[Staging]:
        restore = find_tool("pg_restore", self.pg_bin).path
        env = tool_env(self.pg, "restore")
        purpose = "restore" if target_tenant_id is not None else "verify"
        with scratch.hold_new_schema(self.engine, purpose) as name:
            staging = Staging(name)
            try:
                pg_staging.build(self.engine, self.backend, restore, env, spec, contents,
                                 name)
                if contents.extra_tables:
                    pg_staging.restore_extra(self.engine, self.pg, restore, env, spec,
                                             contents, name)
                yield staging
            finally:  # after a promote the name is gone and this drops nothing
                self.discard(staging)

    def digest_staging(self, staging: Staging) -> dict[str, TableDigest]:
        with self._snapshot_connection(None) as conn:
            return digest_schema(conn, staging.location)[0]

    def staging_revision(self, staging: Staging) -> str | None:
        with self._snapshot_connection(None) as conn:
            return digest_schema(conn, staging.location)[1]

    def promote(self, staging: Staging, tenant_id: str, guard: Guard | None = None) -> None:
        """Swap the verified copy in; the tenant it replaces (which may have been
        provisioned and written since the restore began) is checked at the swap."""
        with self.backend.locked_act(tenant_id), self.engine.connect() as conn, \
                _transaction(conn):
            set_lock_timeout(conn, self.backend.settings.lock_timeout)
            self.backend.lock_tenant(conn, self.backend.location(tenant_id))
            pg_guard.swap_in(conn, self.engine, staging.location,
                             self.backend.location(tenant_id), guard or refuse_rows)

    def discard(self, staging: Staging) -> None:
        if not scratch.is_scratch_schema(staging.location):  # never a tenant's schema
            raise ValueError(f"refusing to drop {staging.location!r}: not a staging schema")
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_ident(staging.location)} CASCADE")

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# A restore reads rows only from a schema name that is never public, pg_* or odd.
KIND = BackupKind(PostgresArchiver, check_location=check_schema_name)
