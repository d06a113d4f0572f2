"""PostgreSQL steps of an offline move: ``pg_dump -n SCHEMA | pg_restore`` between servers.

For servers without ``wal_level = logical``. The caller holds the write
freeze on the source (pg_move.write_freeze: EXCLUSIVE locks, which pg_dump's
ACCESS SHARE locks do not conflict with), so the dump is exactly what the
source holds. pg_restore runs in one transaction on the target: the schema
appears there complete or not at all. Both tools run under an application
name derived from the schema, so a rollback after a crash can stop a copy the
dead mover left running before it drops what that copy made.
"""

from __future__ import annotations

import subprocess
import tempfile

from docex_ops.backends.pg_tools import (
    ArchiveToolError,
    find_tool,
    last_lines,
    require_can_dump,
    tool_env,
)
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.backup.pg import PostgresArchiver
from docex_ops.move.pg_online import replication_name


def copier_purpose(schema: str) -> str:
    """The tools' application name is ``docex-ops-`` + this (unique per moved schema)."""
    return "move-" + replication_name(schema)


def dump_restore(source: PostgresBackend, target: PostgresBackend, schema: str,
                 pg_bin: str | None = None) -> None:
    """Copy the schema (structure and rows) from source to target in one target transaction.

    Owners and grants are left out, as in the online move (roles are per server):
    pg_move_acl carries them over afterwards.
    """
    dump, restore = find_tool("pg_dump", pg_bin), find_tool("pg_restore", pg_bin)
    archiver = PostgresArchiver(source)
    try:
        major, server_text = archiver.server_version()
    finally:
        archiver.dispose()
    require_can_dump(dump, major, server_text)
    purpose = copier_purpose(schema)
    target_pg = target.settings.postgres
    with tempfile.TemporaryFile() as dump_err:
        producer = subprocess.Popen(
            [dump.path, "--format=custom", "--compress=0", "--no-owner", "--no-privileges",
             "--lock-wait-timeout=60000", "--no-password", "--schema", schema],
            env=tool_env(source.settings.postgres, purpose), stdout=subprocess.PIPE,
            stderr=dump_err)
        consumer = subprocess.run(
            [restore.path, "--single-transaction", "--no-owner", "--no-privileges",
             "--no-password", f"--dbname={target_pg.database}"],
            env=tool_env(target_pg, purpose), stdin=producer.stdout, capture_output=True,
            check=False)
        assert producer.stdout is not None
        producer.stdout.close()
        producer.wait()
        if producer.returncode != 0:
            dump_err.seek(0)
            raise ArchiveToolError(f"pg_dump -n {schema} on the source failed "
                                   f"(exit {producer.returncode}): {last_lines(dump_err.read())}")
    if consumer.returncode != 0:
        raise ArchiveToolError(f"pg_restore of schema {schema!r} on the target failed "
                               f"(exit {consumer.returncode}), nothing was kept there: "
                               f"{last_lines(consumer.stderr)}")


def stop_copiers(backend: PostgresBackend, schema: str) -> int:
    """End the sessions of a copy of ``schema`` still running on ``backend`` (a crashed
    mover's pg_dump or pg_restore); returns how many were ended."""
    with backend.admin_engine.begin() as conn:
        ended = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %(a)s AND pid <> pg_backend_pid()",
            {"a": "docex-ops-" + copier_purpose(schema)}).scalar()
    return int(ended or 0)
