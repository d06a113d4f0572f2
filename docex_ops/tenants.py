"""Tenant lifecycle operations: list, show, provision, drop. No printing here."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from docex_ops import audit
from docex_ops.backends import TenantInfo
from docex_ops.backends.base import CORRUPT, LINKED, LOCKED
from docex_ops.executor import FailurePolicy, ProgressFn, make_executor
from docex_ops.manager import TenantDatabaseManager
from docex_ops.placement import interrupted_drop
from docex_ops.schema import TABLE_NAMES, docbasket, metadata
from docex_ops.tenancy import validate_all, validate_tenant_id


@dataclass(frozen=True)
class ProvisionResult:
    tenant_id: str
    location: str
    created: bool
    verified: bool | None
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def list_tenants(manager: TenantDatabaseManager, with_size: bool = True) -> list[TenantInfo]:
    return manager.backend.discover(with_size=with_size)


def find_tenant(manager: TenantDatabaseManager, tenant_id: str) -> TenantInfo | None:
    tenant_id = validate_tenant_id(tenant_id)
    manager.backend.location(tenant_id)  # refuse ids the template cannot place
    return next((t for t in list_tenants(manager) if t.tenant_id == tenant_id), None)


def provision_tenants(manager: TenantDatabaseManager, tenant_ids: Sequence[str],
                      verify: bool = False, jobs: int = 1,
                      progress: ProgressFn | None = None) -> list[ProvisionResult]:
    """Create each missing tenant (idempotent); optionally prove it works end to end.

    Every id is checked before anything is created; with ``jobs`` > 1 tenants
    are created in parallel, each in its own transaction. A failed tenant does
    not stop the others.
    """
    ids = validate_all(tenant_ids)
    locations = {t: manager.backend.location(t) for t in ids}  # all refused before any SQL

    def provision_one(tenant_id: str) -> ProvisionResult:
        started = time.perf_counter()
        try:
            created = manager.provision(tenant_id)
            verified = verify_tenant(manager, tenant_id) if verify else None
            error = None
        except RuntimeError as exc:
            created, verified, error = False, False if verify else None, str(exc)
        return ProvisionResult(tenant_id, locations[tenant_id], created, verified,
                               time.perf_counter() - started, error)

    policy = FailurePolicy(continue_on_error=True)
    return make_executor(provision_one, jobs, policy, progress).run(ids)


def verify_tenant(manager: TenantDatabaseManager, tenant_id: str) -> bool:
    """Write and delete a probe basket through the manager's routed connection."""
    probe_id = f"bas_{uuid.uuid4().hex}"
    now = datetime.now(UTC).replace(tzinfo=None)
    with manager.tenant_transaction(tenant_id) as session:
        session.execute(insert(docbasket).values(
            id=probe_id, name=f"docex-ops-probe-{probe_id}", description="docex-ops probe",
            storage_config={}, status="active", created_at=now, updated_at=now))
        seen = session.execute(
            select(func.count()).select_from(docbasket).where(docbasket.c.id == probe_id)
        ).scalar_one()
        session.execute(delete(docbasket).where(docbasket.c.id == probe_id))
    return seen == 1


def count_rows(manager: TenantDatabaseManager, tenant_id: str) -> dict[str, int]:
    """Rows per DocEX table of one tenant."""
    with manager.backend.tenant_connection(tenant_id) as conn:
        return {name: conn.execute(select(func.count()).select_from(metadata.tables[name]))
                .scalar_one() for name in TABLE_NAMES}


class TenantHasDataError(RuntimeError):
    """Dropping would delete rows and the caller did not accept that."""


class TenantUnreadableError(RuntimeError):
    """The tenant is linked, locked or corrupt: its rows cannot be known (exit 1)."""


def drop_tenant(manager: TenantDatabaseManager, tenant_id: str,
                allow_data: bool = False) -> TenantInfo:
    """Drop an existing tenant; unknown ids are refused. Returns what was dropped.

    A tenant holding rows is only dropped with ``allow_data`` (the caller has
    taken a backup or accepted the loss).
    """
    info = find_tenant(manager, tenant_id)
    if info is None and interrupted_drop(manager, tenant_id):  # finish it
        info = TenantInfo(tenant_id, manager.backend.location(tenant_id), 0, None)
    if info is None:
        raise LookupError(f"tenant {tenant_id!r} does not exist on {manager.settings.describe()}")
    if info.condition in (LINKED, LOCKED) or (info.condition == CORRUPT and not allow_data):
        # A link would drop another tenant's file; a lock or a corrupt file hides its rows.
        audit.record("tenant.drop", tenant_id, info.location, audit.REFUSED,
                     {"reason": info.detail, "force": allow_data})
        raise TenantUnreadableError(f"not dropping: {info.detail}"
                                    + ("; drop with --force to delete it anyway"
                                       if info.condition == CORRUPT else ""))
    if not allow_data and info.tables == len(TABLE_NAMES):
        rows = sum(count_rows(manager, tenant_id).values())
        if rows:
            audit.record("tenant.drop", tenant_id, info.location, audit.REFUSED,
                         {"reason": f"holds {rows} rows", "force": False})
            raise TenantHasDataError(
                f"tenant {tenant_id!r} holds {rows} rows; back it up first, then drop with --force")
    manager.close_tenant_connection(tenant_id)
    try:
        manager.backend.drop(tenant_id)
    except (SQLAlchemyError, OSError) as exc:
        audit.record("tenant.drop", tenant_id, info.location, audit.FAILED,
                     {"error": str(exc).splitlines()[0]})
        raise RuntimeError(f"tenant {tenant_id!r}: dropping {info.location} failed: "
                           f"{str(exc).splitlines()[0]}") from exc
    audit.record("tenant.drop", tenant_id, info.location, audit.OK,
                 {"force": allow_data, "revision": info.revision})
    return info


def ensure_tenant_role(manager: TenantDatabaseManager, tenant_id: str) -> str:
    """PostgreSQL: the login-less role ``docex_t_<id>`` owning only the tenant's schema
    (on a fleet, on the tenant's server: roles are per server)."""
    from docex_ops.backends.postgres import PostgresBackend
    from docex_ops.backends.postgres_roles import ensure_tenant_role as ensure_role
    from docex_ops.placement import fleet_of

    tenant_id = validate_tenant_id(tenant_id)
    fleet = fleet_of(manager.backend)
    backend = fleet.server_backend(tenant_id) if fleet is not None else manager.backend
    if not isinstance(backend, PostgresBackend):
        raise RuntimeError("tenant roles need PostgreSQL: SQLite has no roles")
    return ensure_role(backend, tenant_id)[0]
