"""Citus: no reference or distributed table outside the tenant schemas names a tenant.

Schema-based sharding keeps each tenant's rows in its own schema. A shared table that
carries tenant rows beside each other is Citus's *row-based* multi-tenant model, where
isolation is a ``WHERE tenant_id = ...`` every query must remember; a reference table
is copied to every node and readable by every tenant's queries. So a distributed or
reference table outside the tenant schemas that names a tenant puts tenant rows where
per-schema isolation does not reach.

"Names a tenant" is decided on the columns, not on the values: Citus's row-based model
identifies the tenant by a column (its distribution column, ``tenant_id`` in Citus's
multi-tenant documentation), so a column named for the tenant is how such a table holds
tenant rows. Reading the values instead would scan every shared table on every worker on
each run and could not tell a tenant id from the same word in other data. Flagged: a
column named ``tenant_id`` or ``tenant``, or a distribution column whose name contains
``tenant``. One query on the coordinator's metadata.
"""

from __future__ import annotations

from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, fail

NAME = "citus_shared_tables"

_SHARED_SQL = """
SELECT n.nspname::text, c.relname::text,
       CASE WHEN p.partmethod = 'n' AND p.repmodel = 't' THEN 'reference table'
            WHEN p.partmethod = 'h' THEN 'hash-distributed table'
            ELSE 'distributed table' END,
       array_agg(a.attname::text ORDER BY a.attnum)
FROM pg_dist_partition p
JOIN pg_class c ON c.oid = p.logicalrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_dist_schema ds ON ds.schemaid = n.oid
WHERE NOT n.nspname = ANY(%(tenants)s) AND ds.schemaid IS NULL
  AND (lower(a.attname) IN ('tenant_id', 'tenant')
       OR (p.partmethod = 'h' AND lower(a.attname) LIKE '%%tenant%%'
           AND a.attname = column_to_column_name(p.logicalrelid, p.partkey)))
GROUP BY 1, 2, 3
ORDER BY 1, 2
"""


def check_shared_tables(ctx: IsolationContext) -> list[CheckResult]:
    rows = ctx.require_catalog().exec_driver_sql(
        _SHARED_SQL, {"tenants": list(ctx.tenants.values())}).all()
    findings = [ctx.judged(fail(NAME, DEPLOYMENT, f"{schema}.{name}",
                                f"{what} outside the tenant schemas names a tenant (column "
                                f"{', '.join(columns)}): tenant rows there are not isolated "
                                "per schema; move them into the tenants' own schemas, or "
                                f"accept it with --allow {schema}.{name}"),
                           name, f"{schema}.{name}")
                for schema, name, what, columns in rows]
    if findings:
        return findings
    return [CheckResult(NAME, DEPLOYMENT, Status.PASS, "-",
                        "no reference or distributed table outside the tenant schemas names "
                        "a tenant")]
