"""A restore's scratch schema on PostgreSQL: docex-ops' DDL, then only the archive's rows.

In one transaction (a killed restore leaves nothing): the scratch schema, the
DocEX tables and the version table from docex-ops' DDL for the manifest's
revision, the rows of the archive's DocEX tables (pg_load), then the keys and
indexes, which are set aside while the rows load and rebuilt after, as
pg_restore itself does (much faster than checking them row by row). With
extra objects allowed, the tenant's own other tables follow, restored by the
restricted role (pg_restricted).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from docex_ops.backends.pg_sql import quote_ident, transaction
from docex_ops.backends.pg_tools import run_tool
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.backup.archive import ArchiveContents, ArchiveRefused, RestoreSpec
from docex_ops.backup.pg_load import load_rows, pg_restore_output
from docex_ops.backup.pg_restricted import (
    check_role_work,
    hand_over,
    restricted_role,
    run_as_role,
)
from docex_ops.backup.pg_toc import data_entries, extra_entries, index_entries, index_tables
from docex_ops.config.settings import PostgresSettings

# pg_restore's SQL for the extra tables: no owners, grants, comments, labels or tablespaces.
_EXTRA_OPTIONS = ("--no-owner", "--no-acl", "--no-comments", "--no-security-labels",
                  "--no-tablespaces")

_COLUMNS_SQL = """
SELECT c.relname, array_agg(a.attname::text)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %(s)s)
   AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 GROUP BY 1
"""

# Keys and indexes our DDL made: set aside while the rows load (foreign keys first, then
# primary and unique keys, then plain indexes), rebuilt after in the reverse order.
_KEYS_SQL = """
WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = %(s)s)
SELECT CASE k.contype WHEN 'f' THEN 0 ELSE 1 END, t.relname, k.conname,
       pg_get_constraintdef(k.oid), true
  FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
 WHERE k.connamespace IN (SELECT oid FROM s) AND k.contype IN ('p', 'u', 'f')
UNION ALL
SELECT 2, t.relname, ic.relname, pg_get_indexdef(i.indexrelid), false
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
 WHERE ic.relnamespace IN (SELECT oid FROM s)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                    AND k.contype IN ('p', 'u'))
 ORDER BY 1, 2, 3
"""


def build(engine: Engine, backend: PostgresBackend, pg_restore: str, env: dict[str, str],
          spec: RestoreSpec, contents: ArchiveContents, schema: str) -> None:
    """Create ``schema`` from ``spec.ddl`` and load the archive's DocEX rows into it. The
    schema is made as ``backend`` makes a tenant's (a Citus coordinator: distributed, so
    the copy is on a worker and stays there once renamed to the tenant's name)."""
    q = quote_ident(schema)
    with engine.connect() as conn, transaction(conn):
        backend.create_schema(conn, schema)
        conn.exec_driver_sql(f"SET LOCAL search_path TO {q}")
        backend.execute_script(conn, spec.ddl)
        rebuild = _set_aside_keys(conn, schema)
        ours = {table: list(cols) for table, cols in
                conn.exec_driver_sql(_COLUMNS_SQL, {"s": schema})}
        unknown = sorted(set(contents.docex_tables) - set(ours))
        if unknown:
            raise ArchiveRefused(f"archive {spec.archive}: table {unknown[0]} is not part of "
                                 f"revision {spec.revision}; refused")
        columns = {t: ours[t] for t in contents.docex_tables}
        if columns:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            cursor = dbapi.cursor()
            try:
                with pg_restore_output(pg_restore, spec.archive, data_entries(contents), env,
                                       "--data-only") as stream:
                    load_rows(cursor, stream, spec.archive, spec.location, schema, columns)
            finally:
                cursor.close()
        for statement in rebuild:
            conn.exec_driver_sql(statement)


def _set_aside_keys(conn: Connection, schema: str) -> list[str]:
    """Drop our keys and indexes; the statements that rebuild them, in order."""
    q = quote_ident(schema)
    drops, rebuild = [], []
    for _, table, name, definition, is_constraint in conn.exec_driver_sql(
            _KEYS_SQL, {"s": schema}).all():
        on = f"{q}.{quote_ident(table)}"
        if is_constraint:
            drops.append(f"ALTER TABLE {on} DROP CONSTRAINT {quote_ident(name)}")
            rebuild.append(f"ALTER TABLE {on} ADD CONSTRAINT {quote_ident(name)} {definition}")
        else:
            drops.append(f"DROP INDEX {q}.{quote_ident(name)}")
            rebuild.append(definition)
    for statement in drops:
        conn.exec_driver_sql(statement)
    return list(reversed(rebuild))


def restore_extra(engine: Engine, pg: PostgresSettings, pg_restore: str, env: dict[str, str],
                  spec: RestoreSpec, contents: ArchiveContents, schema: str) -> None:
    """The tenant's own extra tables, by the restricted role, checked before handed over."""
    what = f"archive {spec.archive}"
    indexes: dict[str, str] = {}
    if index_entries(contents):  # which table each index is on: read, never run
        with pg_restore_output(pg_restore, spec.archive, index_entries(contents), env,
                               *_EXTRA_OPTIONS) as stream:
            indexes = index_tables(stream.read().decode(errors="replace"))
    lines = extra_entries(contents, indexes)
    with restricted_role(engine, schema) as (role, password):
        with pg_restore_output(pg_restore, spec.archive, lines, env, *_EXTRA_OPTIONS) as stream:
            run_as_role(pg, role, password, stream, spec.location, schema, what)
        with engine.connect() as conn, transaction(conn):
            check_role_work(conn, role, schema, what)
            hand_over(conn, role)


def archive_listing(pg_restore: str, archive: Path, env: dict[str, str]) -> str:
    return run_tool([pg_restore, "--list", str(archive)], env,
                    f"pg_restore --list {archive}").decode(errors="replace")
