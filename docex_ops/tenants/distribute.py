"""``tenants distribute``: make tenant schemas that live on the Citus coordinator into
distributed schemas (``citus_schema_distribute``), one transaction per tenant. No
printing here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from docex_ops import audit_trail
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import validate_all

NEEDS_CITUS = ("tenants distribute needs database.postgres.topology: citus (a Citus "
               "coordinator); this configuration has no distributed schemas")
DISTRIBUTED, WOULD_DISTRIBUTE, ALREADY, FAILED = (
    "distributed", "would distribute", "already distributed", "failed")


@dataclass(frozen=True)
class DistributeResult:
    tenant_id: str
    location: str
    outcome: str            # DISTRIBUTED, WOULD_DISTRIBUTE, ALREADY or FAILED
    node: str | None        # where its tables are now (after a real run)
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def distribute_tenants(manager: TenantDatabaseManager, tenant_ids: Sequence[str] = (),
                       every: bool = False, dry_run: bool = False) -> list[DistributeResult]:
    """Distribute the named tenants (or, with ``every``, each one not distributed yet).

    Every id is checked before any SQL; an unknown tenant is a LookupError. Each tenant
    is checked again and distributed in its own transaction; a failure does not stop
    the others.
    """
    cluster = manager.topology.citus_cluster(NEEDS_CITUS)
    ids = validate_all(tenant_ids)
    for tenant_id in ids:
        cluster.location(tenant_id)  # refuse ids the template cannot place, before SQL
    placed = cluster.placements(ids)
    missing = [t for t, where in placed.items() if where is None]
    if missing:
        raise LookupError(f"tenant(s) {', '.join(missing)} do not exist on "
                          f"{manager.settings.describe()}")
    if every:
        ids = sorted(set(ids) | set(cluster.undistributed()))
        placed = cluster.placements(ids)
    results = []
    for tenant_id in ids:
        where = placed[tenant_id]
        location = cluster.location(tenant_id)
        if where is not None and where.distributed:
            results.append(DistributeResult(tenant_id, location, ALREADY, where.node, 0.0))
        elif dry_run:
            results.append(DistributeResult(tenant_id, location, WOULD_DISTRIBUTE, None, 0.0))
        else:
            results.append(_distribute_one(manager, tenant_id, location))
    return results


def _distribute_one(manager: TenantDatabaseManager, tenant_id: str,
                    location: str) -> DistributeResult:
    cluster = manager.topology.citus_cluster(NEEDS_CITUS)
    started = time.perf_counter()
    manager.close_tenant_connection(tenant_id)
    try:
        node = cluster.distribute(tenant_id)
    except (SQLAlchemyError, RuntimeError) as exc:
        error = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        audit_trail.record("tenant.distribute", tenant_id, location, audit_trail.FAILED,
                           {"error": error})
        return DistributeResult(tenant_id, location, FAILED, None,
                                time.perf_counter() - started, error)
    audit_trail.record("tenant.distribute", tenant_id, location, audit_trail.OK,
                       {"node": node})
    return DistributeResult(tenant_id, location, DISTRIBUTED, node,
                            time.perf_counter() - started)
