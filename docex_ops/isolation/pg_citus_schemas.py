"""Citus: each tenant schema is a distributed schema on one worker, and no tenant data is
on the coordinator.

With schema-based sharding a tenant's isolation on Citus rests on its schema being a
*distributed schema*: Citus keeps every table of it in the schema's own colocation
group, on one worker. A tenant schema that is not distributed, or a table in it that
Citus distributes apart (another colocation group, hash-sharded over several nodes),
is outside that guarantee (``citus_distributed``). Tables of a tenant whose rows are on
the coordinator (a plain local table, a Citus local or reference table, a shard placed
on the coordinator's group 0) keep tenant data beside the cluster's metadata, where
every operator session and every tenant's routed query passes (``citus_coordinator``).
Both read Citus's metadata on the coordinator, one query each.
"""

from __future__ import annotations

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import CheckResult, fail, with_passes
from docex_ops.topology.citus import distribute_remedy

DISTRIBUTED = "citus_distributed"
COORDINATOR = "citus_coordinator"

# Per schema: distributed?, its tables Citus does not keep in the schema's colocation
# group, and the nodes its tables' shards are on.
_SCHEMAS_SQL = """
SELECT n.nspname::text, ds.schemaid IS NOT NULL,
       coalesce(array_agg(DISTINCT c.relname::text) FILTER (
           WHERE c.oid IS NOT NULL AND p.colocationid IS DISTINCT FROM ds.colocationid), '{}'),
       coalesce(array_agg(DISTINCT nd.nodename || ':' || nd.nodeport) FILTER (
           WHERE nd.nodeid IS NOT NULL), '{}')
FROM pg_namespace n
LEFT JOIN pg_dist_schema ds ON ds.schemaid = n.oid
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
LEFT JOIN pg_dist_shard sh ON sh.logicalrelid = c.oid
LEFT JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
LEFT JOIN pg_dist_node nd ON nd.groupid = pl.groupid
WHERE n.nspname = ANY(%(schemas)s)
GROUP BY n.nspname, ds.schemaid
"""
# Tables (and materialized views) of tenant schemas whose rows are on the coordinator.
_ON_COORDINATOR_SQL = """
SELECT n.nspname::text, c.relname::text,
       CASE WHEN c.relkind = 'm' THEN 'materialized view (local to the coordinator)'
            WHEN p.logicalrelid IS NULL THEN 'local table (not distributed)'
            WHEN p.partmethod = 'n' AND p.repmodel = 't' THEN 'reference table (a copy on '
                 'every node, the coordinator included)'
            WHEN p.partmethod = 'n' AND p.colocationid = 0 THEN 'Citus local table'
            ELSE 'shard placed on the coordinator' END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'm')
  AND (p.logicalrelid IS NULL OR c.relkind = 'm' OR EXISTS (
       SELECT FROM pg_dist_shard sh JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
       WHERE sh.logicalrelid = c.oid AND pl.groupid = 0))
ORDER BY 1, 2
"""


def check_distributed(ctx: IsolationContext) -> list[CheckResult]:
    rows = ctx.require_catalog().exec_driver_sql(
        _SCHEMAS_SQL, {"schemas": ctx.subject_locations()}).all()
    findings: list[CheckResult] = []
    for schema, distributed, apart, nodes in rows:
        tenant = ctx.tenant_of[schema]
        if not distributed:
            findings.append(fail(
                DISTRIBUTED, tenant, schema,
                "not a distributed schema: its tables are on the coordinator, outside "
                f"Citus's per-schema placement; distribute it with `{distribute_remedy(tenant)}`",
                remedy=f"SELECT citus_schema_distribute({_literal(schema)});"))
            continue
        if apart:
            findings.append(fail(
                DISTRIBUTED, tenant, schema,
                f"table(s) {', '.join(sorted(apart))} are not colocated with the schema "
                "(distributed apart or not at all): they are not kept on the tenant's node"))
        if len(nodes) > 1:
            findings.append(fail(
                DISTRIBUTED, tenant, schema,
                f"the tenant's tables are on {len(nodes)} nodes ({', '.join(sorted(nodes))}); "
                "a distributed schema keeps them on one"))
    return with_passes(DISTRIBUTED, ctx.subjects, findings, "-",
                       "a distributed schema, every table colocated on one worker")


def check_coordinator(ctx: IsolationContext) -> list[CheckResult]:
    rows = ctx.require_catalog().exec_driver_sql(
        _ON_COORDINATOR_SQL, {"schemas": ctx.subject_locations()}).all()
    findings = [ctx.judged(fail(COORDINATOR, ctx.tenant_of[schema], f"{schema}.{name}",
                                f"tenant data on the coordinator: {what}; distribute the "
                                "schema, or move the table's rows into a table Citus "
                                "distributes with the schema"),
                           name, f"{schema}.{name}")
                for schema, name, what in rows]
    return with_passes(COORDINATOR, ctx.subjects, findings, "-",
                       "no table of the tenant keeps rows on the coordinator")


def _literal(schema: str) -> str:
    """The schema as a regnamespace literal Citus's functions take (quoted identifier)."""
    return "'" + quote_ident(schema).replace("'", "''") + "'"
