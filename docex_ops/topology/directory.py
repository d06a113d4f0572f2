"""The tenant directory: which PostgreSQL server holds each tenant.

One table in the control schema of the directory server. A tenant's row and
its schema change together: on the directory server itself in one
transaction; on another server in two steps whose intermediate state is
recorded (``provisioning``, ``dropping``), so rerunning the command finishes
what a crash interrupted (see SeveralServers.create/drop in several.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backends.postgres import PostgresBackend

PROVISIONING = "provisioning"  # row written, schema being created on a non-directory server
ACTIVE = "active"
MOVING = "moving"              # a copy is being made elsewhere; the recorded server serves
DROPPING = "dropping"          # schema being dropped on a non-directory server
FROZEN = "frozen"              # an offline move copies it: writes refused until it ends
ROUTABLE = (ACTIVE, MOVING)
PLACED = (ACTIVE, MOVING, FROZEN)  # the schema is whole on the recorded server

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.tenant_directory (
    tenant_id  text PRIMARY KEY,
    server     text NOT NULL,
    schema     text NOT NULL,
    state      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tenant_directory_server ON {schema}.tenant_directory (server);
CREATE TABLE IF NOT EXISTS {schema}.tenant_moves (
    tenant_id  text PRIMARY KEY,
    source     text NOT NULL,
    target     text NOT NULL,
    schema     text NOT NULL,
    old_schema text NOT NULL,
    step       text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Placement:
    tenant_id: str
    server: str
    schema: str
    state: str
    updated_at: datetime


class TenantDirectory:
    """Reads and writes the directory table on the directory server."""

    def __init__(self, backend: PostgresBackend) -> None:
        self.backend = backend
        self.schema = quote_ident(backend.settings.postgres.control_schema)
        self._ready = False
        self._ready_lock = threading.Lock()

    def _ensure(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            with self.backend.admin_engine.begin() as conn:
                # Serialised: concurrent CREATE TABLE IF NOT EXISTS can still collide.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('docex_ops_ddl'))")
                conn.exec_driver_sql(_DDL.format(schema=self.schema))
            self._ready = True

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction on the directory server (committed at the end of the block)."""
        self._ensure()
        with self.backend.admin_engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        self._ensure()
        with self.backend.admin_engine.connect() as conn:
            yield conn
            conn.rollback()

    def lock(self, conn: Connection, tenant_id: str) -> None:
        """Serialise placement decisions for one tenant across processes (until commit)."""
        self.backend.lock_tenant(conn, self.backend.location(tenant_id))

    def get(self, tenant_id: str, conn: Connection | None = None) -> Placement | None:
        sql = (f"SELECT tenant_id, server, schema, state, updated_at FROM {self.schema}"
               ".tenant_directory WHERE tenant_id = %(t)s")
        if conn is not None:
            row = conn.exec_driver_sql(sql, {"t": tenant_id}).first()
        else:
            with self.reading() as own:
                row = own.exec_driver_sql(sql, {"t": tenant_id}).first()
        return Placement(*row) if row else None

    def all(self) -> dict[str, Placement]:
        with self.reading() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT tenant_id, server, schema, state, updated_at FROM {self.schema}"
                ".tenant_directory ORDER BY tenant_id").all()
        return {r[0]: Placement(*r) for r in rows}

    def counts(self, conn: Connection) -> dict[str, int]:
        """Tenants per server, every state counted (a half-made tenant still takes room)."""
        rows = conn.exec_driver_sql(
            f"SELECT server, count(*) FROM {self.schema}.tenant_directory GROUP BY server").all()
        return {server: int(n) for server, n in rows}

    def put(self, conn: Connection, tenant_id: str, server: str, schema: str,
            state: str) -> None:
        conn.exec_driver_sql(
            f"INSERT INTO {self.schema}.tenant_directory AS d (tenant_id, server, schema, state) "
            "VALUES (%(t)s, %(srv)s, %(s)s, %(st)s) ON CONFLICT (tenant_id) DO UPDATE "
            "SET server = excluded.server, schema = excluded.schema, state = excluded.state, "
            "updated_at = now()", {"t": tenant_id, "srv": server, "s": schema, "st": state})

    def set_state(self, conn: Connection, tenant_id: str, state: str,
                  server: str | None = None) -> None:
        conn.exec_driver_sql(
            f"UPDATE {self.schema}.tenant_directory SET state = %(st)s, "
            "server = coalesce(%(srv)s, server), updated_at = now() WHERE tenant_id = %(t)s",
            {"t": tenant_id, "st": state, "srv": server})

    def delete(self, conn: Connection, tenant_id: str) -> None:
        conn.exec_driver_sql(f"DELETE FROM {self.schema}.tenant_directory "
                             "WHERE tenant_id = %(t)s", {"t": tenant_id})
