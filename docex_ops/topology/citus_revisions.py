"""Tenant revisions on a Citus cluster: one round trip per worker, not one per tenant.

Read through the coordinator, each tenant's ``alembic_version`` is a query routed to its
worker: at 1,000 tenants that is 1,000 round trips from the coordinator (seconds). Here
the coordinator's metadata names each version table's shard, and every worker reads the
shards it holds in one command (``master_run_on_worker``, all workers in parallel). A
worker that fails that command (a lock on a version table beyond the lock timeout, a
node down) has its tenants read the usual way, which reports each locked one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from docex_ops.backends import pg_discover

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

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


def read_revisions(conn: Connection, schemas: list[str], lock_timeout: float
                   ) -> tuple[dict[str, str | None], set[str]]:
    """``pg_discover.read_revisions`` for distributed schemas, read on their workers."""
    if not schemas:
        return {}, set()
    result: dict[str, str | None] = {}
    for success, text in conn.exec_driver_sql(_BY_WORKER_SQL, {
            "schemas": schemas, "lock_timeout": f"{int(lock_timeout * 1000)}ms"}).all():
        if success:
            result.update((str(s), None if v is None else str(v)) for s, v in json.loads(text))
    conn.commit()
    # Not read on a worker (not distributed, no shard yet, the worker's command failed):
    # the coordinator's way, schema by schema, with the locked ones reported.
    rest, locked = pg_discover.read_revisions(
        conn, [s for s in schemas if s not in result], lock_timeout)
    return {**result, **rest}, locked
