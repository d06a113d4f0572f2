"""A Citus cluster with schema-based sharding: one coordinator, tenants on worker nodes.

Every tenant schema is a distributed schema (Citus 12+): its tables live together on
one worker, and the coordinator routes each query there. So for connections there is
one server, the coordinator, serving every tenant (``server_of``); where a tenant's
data is, is a second answer, the worker node (``node_of`` / ``nodes_of`` / ``by_node``),
read set-based from Citus's metadata on the coordinator. A tenant schema that is not
distributed lives on the coordinator itself: it is reported as a placement problem and
left out, until ``docex-ops tenants distribute ID`` distributes it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from docex_ops.backends.pg_sql import execute_each_statement
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.citus import CitusSettings
from docex_ops.config.settings import Settings
from docex_ops.topology import citus_revisions
from docex_ops.topology.base import Discovery, Topology
from docex_ops.topology.fleet_view import PlacementProblem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Per schema asked for: whether it is a distributed schema, and the worker nodes its
# shards are placed on (none while it has no table). pg_dist_schema is the catalog behind
# the citus_schemas view, read directly because the view also sums every schema's size
# (citus_shard_sizes: a round trip to every worker) that placement does not need.
_PLACEMENT_SQL = """
SELECT n.nspname::text, ds.schemaid IS NOT NULL,
       array_remove(array_agg(DISTINCT nd.nodename || ':' || nd.nodeport), NULL)
FROM pg_namespace n
LEFT JOIN pg_dist_schema ds ON ds.schemaid = n.oid
LEFT JOIN pg_dist_partition p ON p.colocationid = ds.colocationid
LEFT JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid
LEFT JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
LEFT JOIN pg_dist_node nd ON nd.groupid = pl.groupid
WHERE n.nspname = ANY(%(schemas)s)
GROUP BY n.nspname, ds.schemaid
"""
# Bytes per tenant schema on its worker (tables and indexes of every shard): the
# coordinator's catalog holds only empty shell tables. One round trip per worker.
_SIZES_SQL = """
SELECT n.nspname::text, sum(css.size)::bigint
FROM citus_shard_sizes() css(shard_id, size)
JOIN pg_dist_shard sh ON sh.shardid = css.shard_id
JOIN pg_class c ON c.oid = sh.logicalrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s)
GROUP BY n.nspname
"""
_WORKERS_SQL = """
SELECT nodename::text, nodeport FROM pg_dist_node
WHERE noderole = 'primary' AND isactive AND groupid <> 0 ORDER BY nodeid
"""


@dataclass(frozen=True)
class CitusNode:
    """A worker node: its name (from ``database.postgres.nodes``, else host:port)."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class SchemaPlacement:
    """Where one tenant schema is, by Citus's metadata."""

    distributed: bool
    nodes: tuple[str, ...]  # worker node names its shards are on (one when colocated)

    @property
    def node(self) -> str | None:
        return self.nodes[0] if len(self.nodes) == 1 else None


def distribute_remedy(tenant_id: str) -> str:
    return f"docex-ops tenants distribute {tenant_id}"


class CitusCluster(Topology):
    """The coordinator is the one server (connections, control data, discovery)."""

    servers: dict[str, PostgresBackend]
    shape = "citus"

    def __init__(self, settings: Settings, citus: CitusSettings) -> None:
        super().__init__()
        self.citus = citus
        # Every tenant schema the coordinator creates (provisioning, split, a restore's
        # copy) is a distributed schema, its tables colocated on one worker. Citus forwards
        # its DDL to the worker as one command, and a worker refuses several commands in
        # one (a prepared statement): every script goes statement by statement.
        # Revisions are read on the workers, one round trip each (citus_revisions.py).
        self.coordinator = PostgresBackend(
            settings, script_runner=execute_each_statement,
            schema_settings=("SET LOCAL citus.enable_schema_based_sharding TO on",),
            revision_reader=functools.partial(citus_revisions.read_revisions,
                                              direct=settings.postgres),
            split_revision_reads=False,  # the workers' reads run in parallel already
            snapshot_covers_rows=False,
            # Citus hides shards by a relation_is_a_known_shard() call on every pg_class row
            # a query reads (half of discovery's time at 1,000 tenants); discovery names
            # tables exactly, so a shard (relname_<shardid>) is never taken for one.
            catalog_settings=("SET LOCAL citus.override_table_visibility TO off",))
        self.control_server = settings.directory_server
        self.servers = {self.control_server: self.coordinator}

    def citus_cluster(self, needs: str) -> CitusCluster:
        return self

    # -- where tenants are ----------------------------------------------------------------

    def server_of(self, tenant_id: str) -> str:
        """The coordinator: every tenant is reached through it."""
        return self.control_server

    def worker_nodes(self) -> list[CitusNode]:
        """The active primary worker nodes, in the order they were added."""
        with self.coordinator.admin_engine.connect() as conn:
            rows = conn.exec_driver_sql(_WORKERS_SQL).all()
            conn.rollback()
        return [CitusNode(self.citus.node_name(host, int(port)), host, int(port))
                for host, port in rows]

    def placements(self, tenant_ids: Iterable[str]) -> dict[str, SchemaPlacement | None]:
        """Each tenant's schema placement, in one query for all of them (None: no schema)."""
        by_schema = {self.location(t): t for t in tenant_ids}
        if not by_schema:
            return {}
        with self.coordinator.admin_engine.connect() as conn:
            found = self.placements_in(conn, list(by_schema))
            conn.rollback()
        return {tenant: found.get(schema) for schema, tenant in by_schema.items()}

    def placements_in(self, conn: Connection, schemas: list[str]
                      ) -> dict[str, SchemaPlacement]:
        """``placements`` by schema name, on the caller's connection to the coordinator."""
        rows = conn.exec_driver_sql(_PLACEMENT_SQL, {"schemas": schemas}).all()
        return {schema: SchemaPlacement(bool(distributed),
                                        tuple(sorted(self._name(e) for e in endpoints or ())))
                for schema, distributed, endpoints in rows}

    def node_of(self, tenant_id: str) -> str | None:
        """The worker node holding the tenant's tables (None: none, or not distributed)."""
        return self.nodes_of([tenant_id])[tenant_id]

    def nodes_of(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        """``node_of`` for many tenants, in one query."""
        return {tenant: placed.node if placed is not None else None
                for tenant, placed in self.placements(tenant_ids).items()}

    def job_place(self, tenant_id: str, server: str) -> str:
        """The worker node holding the tenant: ``--jobs`` is a limit per node, where the
        work runs (the coordinator's slots for a tenant on no node yet)."""
        return self.node_of(tenant_id) or server

    def by_node(self, tenant_ids: Iterable[str]) -> dict[str | None, list[str]]:
        """``tenant_ids`` grouped by worker node (for a job limit per node), nodes in the
        order they were added; tenants without a node under None, last."""
        placed = self.nodes_of(tenant_ids)
        grouped: dict[str | None, list[str]] = {n.name: [] for n in self.worker_nodes()}
        for tenant, node in placed.items():
            grouped.setdefault(node, []).append(tenant)
        if None in grouped:
            grouped[None] = grouped.pop(None)
        return {node: ids for node, ids in grouped.items() if ids}

    def _name(self, endpoint: str) -> str:
        host, _, port = endpoint.rpartition(":")
        return self.citus.node_name(host, int(port))

    # -- discovery ------------------------------------------------------------------------

    def discover(self, with_size: bool = False) -> Discovery:
        """The coordinator's tenants with their nodes; a schema that is not distributed
        is a placement problem (its data is on the coordinator), left out."""
        # Placements read on discovery's own connection, in its catalog read's transaction
        # (``migrate status`` never loads SQLAlchemy, nor opens a second connection).
        found, placements = self.coordinator.discover_and(with_size, self.placements_in)
        by_schema = placements or {}
        placed = {t.tenant_id: by_schema.get(t.location) for t in found}
        sizes = self.sizes([t.location for t in found]) if with_size else {}
        tenants, problems = [], []
        for info in found:
            where = placed.get(info.tenant_id)
            if where is not None and where.distributed:
                size = sizes.get(info.location, info.size_bytes) if with_size else None
                tenants.append(replace(info, node=where.node, size_bytes=size))
                continue
            problems.append(PlacementProblem(
                info.tenant_id, (self.control_server,), None, None,
                f"tenant {info.tenant_id!r}: schema {info.location} is not a distributed "
                "schema (its tables are on the Citus coordinator); distribute it with "
                f"`{distribute_remedy(info.tenant_id)}`"))
        return Discovery(tenants, problems)

    def sizes(self, schemas: list[str]) -> dict[str, int]:
        """Bytes of each distributed schema on its worker, in one query."""
        if not schemas:
            return {}
        with self.coordinator.admin_engine.connect() as conn:
            rows = conn.exec_driver_sql(_SIZES_SQL, {"schemas": schemas}).all()
            conn.rollback()
        return {schema: int(size) for schema, size in rows}

    def undistributed(self) -> list[str]:
        """Tenants whose schema exists but is not distributed, sorted."""
        return sorted(p.tenant_id for p in self.discover().problems)

    # -- what changes where a tenant is ---------------------------------------------------

    def distribute(self, tenant_id: str) -> str | None:
        """``citus_schema_distribute`` on the tenant's schema in its own transaction,
        checked there first; returns the node it went to (None: no tables)."""
        schema = self.location(tenant_id)
        with self.coordinator.admin_engine.begin() as conn:
            self.coordinator.lock_tenant(conn, schema)
            placed = self.placements_in(conn, [schema]).get(schema)
            if placed is None:
                raise LookupError(f"tenant {tenant_id!r} does not exist on "
                                  f"{self.coordinator.settings.describe()}")
            if not placed.distributed:
                conn.exec_driver_sql(
                    "SELECT citus_schema_distribute(quote_ident(%(s)s)::regnamespace)",
                    {"s": schema})
            after = self.placements_in(conn, [schema])[schema]
            if not after.distributed:
                raise RuntimeError(f"tenant {tenant_id!r}: {schema} is still not distributed "
                                   "after citus_schema_distribute")
        return after.node
