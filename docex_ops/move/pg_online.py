"""PostgreSQL steps of moving one tenant schema between servers with logical replication.

Source: a publication ``FOR TABLES IN SCHEMA`` (PostgreSQL 15+, needs
``wal_level = logical``). Target: the same schema made from ``pg_dump
--schema-only`` (so the structure is exactly the source's, whatever its
revision; owners and privileges are carried over by pg_move_acl, roles being
per server), then a subscription that copies the rows and streams changes;
secondary indexes, unique and foreign keys are dropped on the target for the
initial copy and built after it (a copy into a table with all its indexes is
several times slower), and the verification compares them with the source's.
The write freeze is a transaction on the source holding EXCLUSIVE locks on
every table of the tenant (reads go on, writes wait); inside it the source
schema is renamed, so writers that were waiting fail with "relation does not
exist" and route again, instead of writing to the old copy.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from docex_ops.backends.digest import TableDigest, digest_schema
from docex_ops.backends.pg_sql import RUNNER_NAMESPACE
from docex_ops.backends.pg_tools import ArchiveToolError, find_tool, last_lines, tool_env
from docex_ops.backends.postgres import PostgresBackend, quote_ident
from docex_ops.config.settings import PostgresSettings

MOVE_NAMESPACE = RUNNER_NAMESPACE + 1
# Value text as the digests compare it on both sides (dates ISO, times in UTC).
DIGEST_SETTINGS = "SET LOCAL DateStyle TO 'ISO, YMD'; SET LOCAL TimeZone TO 'UTC'"


class MoveError(RuntimeError):
    """A move step failed; the message says which and what to do."""


def replication_name(schema: str) -> str:
    """Publication, subscription and slot name of a schema's move (stable across reruns)."""
    return "docex_move_" + hashlib.md5(schema.encode()).hexdigest()[:16]


def require_logical(source: PostgresBackend, server: str) -> None:
    with source.admin_engine.connect() as conn:
        level = conn.exec_driver_sql("SHOW wal_level").scalar()
        version = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
    if version < 150000:
        raise MoveError(f"server {server!r} runs PostgreSQL {version // 10000}: an online move "
                        "needs 15+ (publications FOR TABLES IN SCHEMA)")
    if level != "logical":
        raise MoveError(
            f"server {server!r} has wal_level={level}: an online move streams the tenant's "
            "changes by logical replication, which needs wal_level = logical (set it in "
            "postgresql.conf and restart the server; it costs somewhat more WAL), or "
            "move it offline with --offline (pg_dump | pg_restore, writes refused while "
            "it copies)")


def schema_exists(backend: PostgresBackend, schema: str) -> bool:
    with backend.admin_engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT 1 FROM pg_namespace WHERE nspname = %(s)s",
                                     {"s": schema}).first()
        conn.rollback()
    return found is not None


def copy_structure(source: PostgresSettings, target: PostgresSettings, schema: str,
                   pg_bin: str | None = None) -> None:
    """The schema's DDL, without rows, owners or privileges, from source to target (one
    transaction on target)."""
    dump, psql = find_tool("pg_dump", pg_bin), find_tool("psql", pg_bin)
    producer = subprocess.Popen(
        [dump.path, "--schema-only", "--no-owner", "--no-privileges", "-n", schema,
         "--no-password"], env=tool_env(source, "move"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    consumer = subprocess.run(
        [psql.path, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
         "--no-password", "-f", "-"], env=tool_env(target, "move"), stdin=producer.stdout,
        capture_output=True, check=False)
    _, dump_err = producer.communicate()
    if producer.returncode != 0:
        raise ArchiveToolError(f"pg_dump --schema-only of {schema!r} failed: "
                               f"{last_lines(dump_err)}")
    if consumer.returncode != 0:
        raise ArchiveToolError(f"creating schema {schema!r} on the target failed: "
                               f"{last_lines(consumer.stderr)}")


def publish(source: PostgresBackend, schema: str) -> None:
    name = replication_name(schema)
    with source.admin_engine.begin() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_publication WHERE pubname = %(n)s",
                                    {"n": name}).first():
            conn.exec_driver_sql(f"CREATE PUBLICATION {name} FOR TABLES IN SCHEMA "
                                 f"{quote_ident(schema)}")


def unpublish(source: PostgresBackend, schema: str) -> None:
    with source.admin_engine.begin() as conn:
        conn.exec_driver_sql(f"DROP PUBLICATION IF EXISTS {replication_name(schema)}")


def _conninfo(pg: PostgresSettings) -> str:
    def quoted(value: object) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = {"host": pg.host, "port": pg.port, "dbname": pg.database, "user": pg.user,
             "password": pg.password, "sslmode": pg.sslmode,
             "application_name": "docex-ops-move"}
    return " ".join(f"{k}={quoted(v)}" for k, v in parts.items() if v is not None)


def subscribe(target: PostgresBackend, source: PostgresSettings, schema: str) -> None:
    name = replication_name(schema)
    with target.admin_engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # not in a transaction
        if conn.exec_driver_sql("SELECT 1 FROM pg_subscription WHERE subname = %(n)s",
                                {"n": name}).first():
            return
        # synchronous_commit on: the apply worker flushes each applied transaction, so it
        # can confirm it at once; with the default (off) it waits for the WAL writer, and
        # the zero-lag wait inside each freeze took 0.4-0.6 s instead of tens of ms.
        conn.exec_driver_sql(
            f"CREATE SUBSCRIPTION {name} CONNECTION %(c)s PUBLICATION {name} "
            "WITH (synchronous_commit = 'on')", {"c": _conninfo(source)})


def unsubscribe(target: PostgresBackend, schema: str) -> None:
    """Drop the subscription (and with it the replication slot on the source)."""
    name = replication_name(schema)
    with target.admin_engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if conn.exec_driver_sql("SELECT 1 FROM pg_subscription WHERE subname = %(n)s",
                                {"n": name}).first():
            conn.exec_driver_sql(f"ALTER SUBSCRIPTION {name} DISABLE")
            conn.exec_driver_sql(f"DROP SUBSCRIPTION {name}")


def drop_leftover_slot(source: PostgresBackend, schema: str) -> None:
    """A slot the target could not drop (e.g. the target died first) would hold WAL forever."""
    with source.admin_engine.begin() as conn:
        conn.exec_driver_sql(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %(n)s AND NOT active", {"n": replication_name(schema)})


def wait_synced(target: PostgresBackend, schema: str, timeout: float) -> None:
    """Until the subscription's initial copy of every table is done."""
    name = replication_name(schema)
    deadline = time.monotonic() + timeout
    while True:
        with target.admin_engine.connect() as conn:
            states = conn.exec_driver_sql(
                "SELECT r.srsubstate FROM pg_subscription_rel r JOIN pg_subscription s "
                "ON s.oid = r.srsubid WHERE s.subname = %(n)s", {"n": name}).scalars().all()
            conn.rollback()
        if states and all(s == "r" for s in states):
            return
        if time.monotonic() > deadline:
            raise MoveError(f"the initial copy of {schema!r} did not finish in {timeout:.0f}s "
                            f"(table states {sorted(set(states))}); see the target's log")
        time.sleep(0.1)


@contextmanager
def write_freeze(source: PostgresBackend, schema: str, lock_timeout: float
                 ) -> Iterator[Connection]:
    """A transaction holding EXCLUSIVE locks on the tenant's tables: writes wait, reads go.

    Committed when the block exits normally (the caller renames the schema in it).
    """
    with source.admin_engine.connect() as conn, conn.begin():
        conn.exec_driver_sql("SELECT set_config('lock_timeout', %(v)s, true)",
                             {"v": f"{int(lock_timeout * 1000)}ms"})
        conn.exec_driver_sql(DIGEST_SETTINGS)
        tables = conn.exec_driver_sql(
            "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname = %(s)s ORDER BY tablename", {"s": schema}).scalars().all()
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
        yield conn


def wait_caught_up(source_conn: Connection, source: PostgresBackend, schema: str,
                   timeout: float) -> None:
    """Until the target confirmed everything the source wrote up to now (zero lag).

    "Up to now" is the WAL *insert* position: with synchronous_commit off a commit
    can be inserted but not yet written, so the write position may be short of it.
    The walsender only sends flushed WAL, so that position is flushed first.
    """
    lsn = source_conn.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
    _flush_wal(source, lsn)
    deadline = time.monotonic() + timeout
    while True:
        with source.admin_engine.connect() as conn:
            behind = conn.exec_driver_sql(
                "SELECT pg_wal_lsn_diff(%(l)s, confirmed_flush_lsn) FROM pg_replication_slots "
                "WHERE slot_name = %(n)s", {"l": lsn, "n": replication_name(schema)}).scalar()
            conn.rollback()
        if behind is not None and behind <= 0:
            return
        if time.monotonic() > deadline:
            raise MoveError(f"the target did not catch up with {schema!r} in {timeout:.0f}s "
                            f"({behind} bytes behind)")
        time.sleep(0.02)


def _flush_wal(source: PostgresBackend, lsn: object) -> None:
    """Make the source flush its WAL up to ``lsn`` now rather than at the WAL writer's
    next round (up to wal_writer_delay later): a synchronous commit flushes everything
    before it, but only of a transaction that wrote WAL, hence the (transactional)
    logical message, which subscribers do not receive."""
    with source.admin_engine.connect() as conn, conn.begin():
        if conn.exec_driver_sql("SELECT pg_wal_lsn_diff(%(l)s, pg_current_wal_flush_lsn()) > 0",
                                {"l": lsn}).scalar():
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO on; "
                                 "SELECT pg_logical_emit_message(true, 'docex-ops', 'flush')")


def digest_in(conn: Connection, schema: str) -> dict[str, TableDigest]:
    """Row counts and order-independent checksums (pg_archive.unordered_digest_sql) inside
    the caller's transaction, whose DateStyle and TimeZone must be ISO and UTC."""
    return digest_schema(conn, schema, ordered=False)[0]


@contextmanager
def reading(backend: PostgresBackend) -> Iterator[Connection]:
    """A transaction on ``backend`` with DIGEST_SETTINGS, for digests and comparisons."""
    with backend.admin_engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(DIGEST_SETTINGS)
        yield conn


def digest_live(backend: PostgresBackend, tenant_id: str) -> dict[str, TableDigest]:
    with reading(backend) as conn:
        return digest_in(conn, backend.location(tenant_id))


_SECONDARY_SQL = """
SELECT 'index', format('DROP INDEX %%I.%%I', n.nspname, c.relname), pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(s)s AND NOT i.indisprimary
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
UNION ALL
SELECT 'constraint', format('ALTER TABLE %%s DROP CONSTRAINT %%I', k.conrelid::regclass,
                            k.conname),
       format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', k.conrelid::regclass, k.conname,
              pg_get_constraintdef(k.oid))
  FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
 WHERE n.nspname = %(s)s AND k.contype IN ('u', 'f')
"""


def defer_secondary_indexes(target: PostgresBackend, schema: str) -> list[str]:
    """Drop the target's secondary indexes, unique and foreign keys (primary keys stay: the
    subscription needs them to apply updates); returns the DDL that makes them again.

    The initial copy then maintains one index per table instead of all of them, and
    the others are built once, sorted, after it (as pg_restore does).
    """
    with target.admin_engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL search_path TO pg_catalog")  # qualified names
        rows = conn.exec_driver_sql(_SECONDARY_SQL, {"s": schema}).all()
        ordered = sorted(rows, key=lambda row: _build_order(row[0], row[2]))
        for _, drop, _ in reversed(ordered):  # foreign keys first: they need unique keys
            conn.exec_driver_sql(drop)
    return [make for _, _, make in ordered]


def _build_order(kind: str, ddl: str) -> int:
    return 0 if kind == "index" else (2 if "FOREIGN KEY" in ddl else 1)


def create_deferred(target: PostgresBackend, ddl: list[str]) -> None:
    with target.admin_engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL search_path TO pg_catalog")
        for statement in ddl:
            conn.exec_driver_sql(statement.replace("%", "%%"))


_STRUCTURE_SQL = """
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s
UNION ALL
SELECT format('%%s %%I %%s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid))
  FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = %(s)s
"""


def structure_in(conn: Connection, schema: str) -> list[str]:
    """The schema's indexes and constraints as DDL text, sorted (names qualified)."""
    conn.exec_driver_sql("SET LOCAL search_path TO pg_catalog")
    return sorted(conn.exec_driver_sql(_STRUCTURE_SQL, {"s": schema}).scalars().all())


def structure_live(backend: PostgresBackend, schema: str) -> list[str]:
    with backend.admin_engine.connect() as conn, conn.begin():
        return structure_in(conn, schema)


def rename_schema(conn: Connection, schema: str, new: str) -> None:
    conn.exec_driver_sql(f"ALTER SCHEMA {quote_ident(schema)} RENAME TO {quote_ident(new)}")
    conn.exec_driver_sql(f"COMMENT ON SCHEMA {quote_ident(new)} IS %(c)s",
                         {"c": f"docex-ops: moved-away copy of {schema}; dropped by "
                               "`docex-ops tenants move --finish`"})


def drop_schema(backend: PostgresBackend, schema: str) -> None:
    with backend.admin_engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")


@contextmanager
def move_lock(directory_server: PostgresBackend, tenant_id: str) -> Iterator[None]:
    """One mover per tenant across processes; a crashed mover's lock dies with its session,
    so a rerun can tell a crashed move (recover it) from a running one (refuse)."""
    key = {"ns": MOVE_NAMESPACE, "t": tenant_id}
    with directory_server.admin_engine.connect() as conn:
        if not conn.exec_driver_sql("SELECT pg_try_advisory_lock(%(ns)s, hashtext(%(t)s))",
                                    key).scalar():
            raise MoveError(f"tenant {tenant_id!r} is being moved by another docex-ops "
                            "process right now")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%(ns)s, hashtext(%(t)s))", key)
            conn.commit()
