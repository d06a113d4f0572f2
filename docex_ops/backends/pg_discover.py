"""PostgreSQL discovery reads: tenant schemas, their revisions and sizes, set-based.

Nothing here waits on an application's lock past ``lock_timeout``: the version
tables and the sizes (``pg_total_relation_size`` locks what it measures) are read
under it, and a schema whose lock outlasts it is returned as locked while the
others are still read.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SQL here is importable without SQLAlchemy
    from sqlalchemy.engine import Connection

REVISION_BATCH = 1000
STREAM_ROWS = 2000  # rows a streamed catalog read holds at once
# From this many versioned schemas on, discovery reads half of the revisions on a second
# connection (PostgresBackend._read_revisions_split): below it, the connection costs more
# than it saves. At 1,000 schemas the read is 0.25 s on one connection, and the whole
# `migrate status` went from 0.56-0.67 s to 0.46-0.59 s with the split.
SPLIT_REVISIONS_FROM = 500

# A session-local function: reads many tenants' version tables in one round
# trip without a giant UNION (which the planner chokes on at ~10,000 schemas)
# and without creating anything persistent.
_REVISIONS_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.docex_ops_revisions_l(schemas text[])
RETURNS TABLE(schema_name text, version_num text, locked boolean) LANGUAGE plpgsql AS $f$
DECLARE s text;
BEGIN
  FOREACH s IN ARRAY schemas LOOP
    BEGIN
      RETURN QUERY EXECUTE format(
        'SELECT %L::text, max(version_num)::text, false FROM %I.alembic_version', s, s);
    EXCEPTION WHEN undefined_table OR invalid_schema_name THEN
      schema_name := s; version_num := NULL; locked := false; RETURN NEXT;
    -- An application lock on the version table beyond lock_timeout: this schema is
    -- reported locked, the others are still read.
    WHEN lock_not_available THEN
      schema_name := s; version_num := NULL; locked := true; RETURN NEXT;
    END;
  END LOOP;
END $f$
"""
_REVISIONS_FUNCTION_NAME = "pg_temp.docex_ops_revisions_l"

# One statement, so one snapshot: the tenant-like schemas, and per schema that holds any,
# its DocEX tables and whether it has a version table (a real table: a view of that name
# would run its owner's code in our session). The grouped scan goes through pg_class's
# (relname, relnamespace) index once for all schemas; a LATERAL count per schema probed it
# 11 times per schema (0.5-0.7 s at 10,000 tenants), and a join of the two halves makes the
# planner pick a nested loop (and JIT) that takes seconds. Python joins them instead.
DISCOVER_SQL = """
SELECT n.oid, n.nspname, NULL::bigint, NULL::boolean
  FROM pg_namespace n
 WHERE n.nspname LIKE %(like)s
UNION ALL
SELECT c.relnamespace, NULL, count(*) FILTER (WHERE c.relname <> 'alembic_version'),
       bool_or(c.relname = 'alembic_version' AND c.relkind = 'r')
  FROM pg_class c
 WHERE c.relname = ANY(%(names)s) AND c.relkind IN ('r', 'p')
 GROUP BY c.relnamespace
"""

# The other tables are listed only where none of DocEX's is (a foreign schema, or an
# empty one): pg_class has no index on relnamespace, so one scan for all such schemas.
_OTHER_TABLES_SQL = """
SELECT c.relnamespace, array_agg(c.relname::text ORDER BY c.relname::text)
  FROM pg_class c
 WHERE c.relnamespace = ANY(%(oids)s) AND c.relkind IN ('r', 'p')
 GROUP BY c.relnamespace
"""

# (schema, DocEX tables, has a version table, the other tables where it has no DocEX table)
SchemaRow = tuple[str, int, bool, list[str] | None]


def discover_schemas(conn: Connection, like: str, table_names: Sequence[str]
                     ) -> list[SchemaRow]:
    """The schemas whose name is LIKE ``like``, in name order, with what discovery needs
    of each: two set-based reads whatever the number of schemas."""
    names: dict[int, str] = {}
    docex: dict[int, int] = {}  # oid -> DocEX tables * 2 + has a version table (no tuple)
    # Streamed: the 20,000 rows of 10,000 schemas are never all held besides the two
    # maps made of them.
    for oid, schema, tables, versioned in conn.exec_driver_sql(
            DISCOVER_SQL, {"like": like, "names": [*table_names, "alembic_version"]},
            execution_options={"stream_results": True, "max_row_buffer": STREAM_ROWS}):
        if schema is not None:
            names[oid] = schema
        else:
            docex[oid] = int(tables) * 2 + bool(versioned)
    bare = [oid for oid in names if docex.get(oid, 0) < 2]
    others: dict[int, list[str]] = {}
    if bare:
        others = {oid: list(tables) for oid, tables in conn.exec_driver_sql(
            _OTHER_TABLES_SQL, {"oids": bare})}
    rows = []
    for oid, schema in names.items():
        tables, versioned = divmod(docex.get(oid, 0), 2)
        rows.append((schema, tables, bool(versioned),
                     others.get(oid, []) if tables == 0 else None))
    rows.sort(key=lambda row: row[0])
    return rows


# pg_total_relation_size locks every table and index it measures, so sizes are
# read in batches, each in its own transaction (see _read_revisions), under lock_timeout.
_SIZES_SQL = """
SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)
  FROM pg_namespace n LEFT JOIN pg_class c
       ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
 WHERE n.nspname = ANY(%(s)s)
 GROUP BY n.nspname
"""
SIZE_BATCH = 100


def read_revisions(conn: Connection, schemas: list[str], lock_timeout: float,
                   to_workers: bool = False) -> tuple[dict[str, str | None], set[str]]:
    """Revisions per schema, and the schemas whose version table stayed locked.
    ``to_workers``: through a Citus coordinator, the lock timeout holds on the workers."""
    from docex_ops.backends.base import chunks
    from docex_ops.backends.pg_guard import set_lock_timeout
    from docex_ops.backends.pg_sql import execute_script

    if not schemas:
        return {}, set()
    execute_script(conn, _REVISIONS_FUNCTION)
    conn.commit()
    result: dict[str, str | None] = {}
    locked: set[str] = set()
    for batch in chunks(schemas, REVISION_BATCH):
        set_lock_timeout(conn, lock_timeout, to_workers)
        # Keyed by the caller's own schema strings, and a few revisions among thousands
        # of tenants are one string each: not two new strings per row held by the result.
        own = {schema: schema for schema in batch}
        for schema, revision, is_locked in conn.exec_driver_sql(
            f"SELECT * FROM {_REVISIONS_FUNCTION_NAME}(%(s)s)", {"s": batch}
        ):
            schema = own.get(schema, schema)
            result[schema] = None if revision is None else sys.intern(revision)
            if is_locked:
                locked.add(schema)
        # Each version table read holds a lock until the transaction ends; the
        # server's lock table (max_locks_per_transaction x max_connections,
        # 6,400 by default) would run out at a few thousand tenants.
        conn.commit()
    return result, locked


def read_sizes(conn: Connection, schemas: list[str], lock_timeout: float
               ) -> tuple[dict[str, int], set[str]]:
    """Sizes per schema, and the schemas whose tables a lock kept from being measured
    within lock_timeout (a batch that meets one is retried schema by schema)."""
    from sqlalchemy.exc import DBAPIError

    from docex_ops.backends.base import chunks
    from docex_ops.backends.pg_guard import is_lock_timeout

    sizes: dict[str, int] = {}
    locked: set[str] = set()
    for batch in chunks(schemas, SIZE_BATCH):
        try:
            sizes.update(_sizes_of(conn, batch, lock_timeout))
        except DBAPIError as exc:
            conn.rollback()
            if not is_lock_timeout(exc):
                raise
            for schema in batch:
                try:
                    sizes.update(_sizes_of(conn, [schema], lock_timeout))
                except DBAPIError as one:
                    conn.rollback()
                    if not is_lock_timeout(one):
                        raise
                    locked.add(schema)
    return sizes, locked


def _sizes_of(conn: Connection, schemas: list[str], lock_timeout: float) -> dict[str, int]:
    from docex_ops.backends.pg_guard import set_lock_timeout

    set_lock_timeout(conn, lock_timeout)
    found = {str(schema): int(size) for schema, size in
             conn.exec_driver_sql(_SIZES_SQL, {"s": schemas})}
    conn.commit()
    return found
