"""Tenant revisions on a Citus cluster: one round trip per worker, not one per tenant.

Read through the coordinator, each tenant's ``alembic_version`` is a query routed to its
worker: at 1,000 tenants that is 1,000 round trips from the coordinator (seconds). Here
the coordinator's metadata names each version table's shard, and every worker reads the
shards it holds in one query, all workers at once: docex-ops connects to each worker
itself (the coordinator's credentials, as ``tenants move`` does), in parallel threads.
A worker it cannot reach that way (workers on a network only the coordinator sees, other
credentials) is read through the coordinator (``master_run_on_worker``, its command in
parallel on every such worker). A worker that fails its read (a lock on a version table
beyond the lock timeout, a node down) has its tenants read the usual way, which reports
each locked one.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from docex_ops.backends import pg_discover

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from docex_ops.config.settings import PostgresSettings

# The asked-for schemas' version table shards, grouped by the worker holding them.
_SHARDS_BY_WORKER_SQL = """
SELECT nd.nodename::text, nd.nodeport, array_agg(n.nspname::text),
       array_agg(shard_name(c.oid, sh.shardid))
  FROM pg_namespace n
  JOIN unnest(%(schemas)s::text[]) AS asked(name) ON asked.name = n.nspname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'alembic_version'
  JOIN pg_dist_shard sh ON sh.logicalrelid = c.oid
  JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
  JOIN pg_dist_node nd ON nd.groupid = pl.groupid AND nd.noderole = 'primary'
 GROUP BY nd.nodename, nd.nodeport
"""
# On one worker: each shard read by a dynamic query inside one statement.
_ON_WORKER_SQL = """
SELECT v.s, (xpath('/row/v/text()', query_to_xml(
         'SELECT max(version_num) AS v FROM ' || v.t, false, true, '')))[1]::text
  FROM unnest(%(s)s::text[], %(t)s::text[]) v(s, t)
"""
_CONNECT_TIMEOUT = 3  # seconds: a worker out of reach falls back, it does not hang
_PER_PART, _MAX_PARTS = 200, 4  # shards per connection to a worker, connections per worker

# Per worker: the shards of the asked-for schemas' version tables it holds, read there by
# one SELECT that returns [[schema, revision], ...] as JSON (query_to_xml: a dynamic read
# per shard inside one statement). `%%`: the text goes through the driver's parameters.
_BY_WORKER_SQL = """
WITH placed AS (
  SELECT n.nspname::text AS s, shard_name(c.oid, sh.shardid) AS t,
         nd.nodename::text AS host, nd.nodeport AS port
    FROM pg_namespace n
    -- A hash join, not 1,000 x 1,000 comparisons of nspname = ANY(...).
    JOIN unnest(%(schemas)s::text[]) AS asked(name) ON asked.name = n.nspname
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'alembic_version'
    JOIN pg_dist_shard sh ON sh.logicalrelid = c.oid
    JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
    JOIN pg_dist_node nd ON nd.groupid = pl.groupid AND nd.noderole = 'primary'
), commands AS (
  SELECT host, port, format(
    'SELECT coalesce(json_agg(json_build_array(v.s, (xpath(''/row/v/text()'', '
    'query_to_xml(''SELECT max(version_num) AS v FROM '' || v.t, false, true, '''')))[1]'
    '::text)), ''[]'')::text FROM (SELECT set_config(''lock_timeout'', %%L, true)) cfg, '
    'unnest(%%L::text[], %%L::text[]) v(s, t)', %(lock_timeout)s, array_agg(s), array_agg(t)
  ) AS command
    FROM placed GROUP BY host, port
), batch AS (
  SELECT array_agg(host) AS hosts, array_agg(port) AS ports, array_agg(command) AS commands
    FROM commands
)
SELECT r.success, r.result
  FROM batch, master_run_on_worker(batch.hosts, batch.ports, batch.commands, true) r
 WHERE batch.hosts IS NOT NULL
"""


def read_revisions(conn: Connection, schemas: list[str], lock_timeout: float,
                   direct: PostgresSettings | None = None
                   ) -> tuple[dict[str, str | None], set[str]]:
    """``pg_discover.read_revisions`` for distributed schemas, read on their workers:
    connecting to each directly with ``direct`` (the coordinator's settings), else, and
    for a worker that refuses that, through the coordinator."""
    if not schemas:
        return {}, set()
    result: dict[str, str | None] = {}
    if direct is not None:
        placed = conn.exec_driver_sql(_SHARDS_BY_WORKER_SQL, {"schemas": schemas}).all()
        parts = [part for worker in placed for part in _parts(*worker)]
        with ThreadPoolExecutor(max(1, len(parts))) as pool:
            for answer in pool.map(lambda p: _read_on(direct, p, lock_timeout), parts):
                result.update(answer)
    left = [s for s in schemas if s not in result]
    if left:
        for success, text in conn.exec_driver_sql(_BY_WORKER_SQL, {
                "schemas": left, "lock_timeout": f"{int(lock_timeout * 1000)}ms"}).all():
            if success:
                result.update((str(s), None if v is None else str(v))
                              for s, v in json.loads(text))
    conn.commit()
    # Not read on a worker (not distributed, no shard yet, the worker's command failed):
    # the coordinator's way, schema by schema, with the locked ones reported.
    rest, locked = pg_discover.read_revisions(
        conn, [s for s in schemas if s not in result], lock_timeout, to_workers=True)
    return {**result, **rest}, locked


def _parts(host: str, port: int, names: list[str], shards: list[str]
           ) -> list[tuple[str, int, list[str], list[str]]]:
    """One worker's shards in up to _MAX_PARTS reads of at least _PER_PART each: a new
    backend builds its catalog cache for every shard it opens (most of a read's time),
    so a few backends at once use the worker's cores."""
    count = min(_MAX_PARTS, max(1, len(names) // _PER_PART))
    step = -(-len(names) // count)
    return [(host, port, names[i:i + step], shards[i:i + step])
            for i in range(0, len(names), step)]


def _read_on(direct: PostgresSettings, placed: Any, lock_timeout: float
             ) -> dict[str, str | None]:
    """One worker's shards read there in one query; {} when it cannot be (the caller
    reads those schemas another way)."""
    import psycopg2  # type: ignore[import-untyped]  # no stubs in the required stack

    host, port, names, shards = placed
    args = replace(direct, host=str(host), port=int(port)).connect_args("docex-ops")
    try:
        raw = psycopg2.connect(**args, connect_timeout=_CONNECT_TIMEOUT)
    except psycopg2.Error:
        return {}
    try:
        with raw.cursor() as cur:
            cur.execute("SELECT set_config('lock_timeout', %(t)s, true)",
                        {"t": f"{max(1, int(lock_timeout * 1000))}ms"})
            cur.execute(_ON_WORKER_SQL, {"s": list(names), "t": list(shards)})
            return {str(s): None if v is None else str(v) for s, v in cur.fetchall()}
    except psycopg2.Error:
        return {}
    finally:
        raw.close()
