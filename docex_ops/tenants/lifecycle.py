"""Tenant lifecycle operations: list, show, provision, drop. No printing here."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from docex_ops import audit_trail
from docex_ops.backends import Backend, TenantInfo
from docex_ops.backends.base import CORRUPT, LINKED, LOCKED, TenantLockedError
from docex_ops.backends.contents import (
    GuardRefusal,
    HoldsRowsError,
    TenantChangedError,
    TenantContents,
)
from docex_ops.backends.guards import DEFAULT_SAFETY_DIR, ActGuard, act_with_retries
from docex_ops.backends.registry import KindRegistry
from docex_ops.backup.create import safety_backup
from docex_ops.executor import FailurePolicy, ProgressFn, make_executor
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.tenancy import role_name_for, validate_all, validate_tenant_id
from docex_ops.topology.placement import interrupted_drop


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
    return manager.discover(with_size).tenants


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


def tenant_contents(manager: TenantDatabaseManager, tenant_id: str) -> TenantContents | None:
    """Rows of every table of one tenant (DocEX's and any other), read under the lock
    timeout (TenantLockedError past it); None if it does not exist."""
    return manager.topology.read_contents(validate_tenant_id(tenant_id))


def count_rows(manager: TenantDatabaseManager, tenant_id: str) -> dict[str, int]:
    """Rows per DocEX table of one tenant."""
    contents = tenant_contents(manager, tenant_id)
    rows = contents.rows if contents is not None else {}
    return {name: rows.get(name, 0) for name in TABLE_NAMES}


TenantHasDataError = HoldsRowsError  # the name callers know


class TenantUnreadableError(RuntimeError):
    """The tenant is linked, locked or corrupt: its rows cannot be known (exit 1)."""


class DropFailedError(RuntimeError):
    """The drop was tried and the database or a file refused it (not a check's refusal)."""


@dataclass(frozen=True)
class RoleRelease:
    """What happened to a dropped tenant's own role (``tenants provision --with-role``)."""

    role: str
    dropped: bool
    why: str      # "it owned nothing else", or what still holds it


@dataclass(frozen=True)
class DropResult:
    info: TenantInfo
    safety_backup: Path | None  # the backup taken first (--force): a manifest, or a byte copy
    rows: int                   # what the tenant held when it was dropped
    role: RoleRelease | None = None  # None: the tenant had no role of its own


def drop_tenant(manager: TenantDatabaseManager, tenant_id: str, allow_data: bool = False,
                safety_dir: Path | None = None, pg_bin: str | None = None) -> DropResult:
    """Drop an existing tenant; unknown ids are refused. Returns what was dropped.

    Checked inside the dropping transaction, the tenant locked against writers
    (guards.ActGuard): rows in any table refuse the drop unless ``allow_data``, and
    then it is backed up into ``safety_dir`` first; objects outside that depend on
    it, or a foreign schema, refuse it always.
    """
    info = _droppable(manager, tenant_id, allow_data, audit=True)
    guard = _drop_guard(manager, tenant_id, allow_data, safety_dir, pg_bin)
    manager.close_tenant_connection(tenant_id)
    detail: dict[str, object] = {"force": allow_data}
    try:
        act_with_retries(lambda: manager.topology.drop(tenant_id, guard))
    except (GuardRefusal, TenantLockedError) as exc:
        audit_trail.record("tenant.drop", tenant_id, info.location, audit_trail.REFUSED,
                     {**detail, "reason": str(exc)})
        raise
    except (SQLAlchemyError, OSError, TenantChangedError) as exc:
        audit_trail.record("tenant.drop", tenant_id, info.location, audit_trail.FAILED,
                     {**detail, "error": str(exc).splitlines()[0]})
        raise DropFailedError(f"tenant {tenant_id!r}: dropping {info.location} failed: "
                           f"{str(exc).splitlines()[0]}") from exc
    rows = guard.seen.total_rows if guard.seen is not None else 0
    role = _release_role(manager, tenant_id)
    audit_trail.record("tenant.drop", tenant_id, info.location, audit_trail.OK,
                 {**detail, "revision": info.revision, "rows": rows,
                  "safety_backup": str(guard.safety_backup) if guard.safety_backup else None,
                  **({"role": role.role, "role_dropped": role.dropped, "role_why": role.why}
                     if role else {})})
    return DropResult(info, guard.safety_backup, rows, role)


def _release_role(manager: TenantDatabaseManager, tenant_id: str) -> RoleRelease | None:
    """The dropped tenant's role: dropped when it owns nothing else, else left and named
    (kinds without roles: None)."""
    if not has_roles(manager):
        return None
    try:
        backend = manager.topology.holder_of(tenant_id)
        released = TENANT_ROLE_RELEASE.for_kind(backend.kind)(backend, tenant_id)
    except (SQLAlchemyError, RuntimeError, LookupError) as exc:  # the drop itself is done
        return RoleRelease(role_name_for(tenant_id), False,
                           f"not checked: {str(exc).splitlines()[0]}")
    return None if released is None else RoleRelease(*released)


def check_drop(manager: TenantDatabaseManager, tenant_id: str,
               allow_data: bool = False) -> DropResult:
    """``tenants drop --dry-run``: the drop's own checks, read-only. Raises what the
    drop would raise (unknown, unreadable, rows without --force, dependents, foreign);
    else what would be dropped (``safety_backup`` stays None: nothing is written)."""
    info = _droppable(manager, tenant_id, allow_data, audit=False)
    contents = tenant_contents(manager, tenant_id)
    if contents is not None:
        _drop_guard(manager, tenant_id, allow_data, None, None).check(contents)
    return DropResult(info, None, contents.total_rows if contents is not None else 0)


def _droppable(manager: TenantDatabaseManager, tenant_id: str, allow_data: bool,
               audit: bool) -> TenantInfo:
    """The tenant to drop, or the refusal of an unknown or unreadable one."""
    info = find_tenant(manager, tenant_id)
    if info is None and interrupted_drop(manager, tenant_id):  # finish it
        info = TenantInfo(tenant_id, manager.backend.location(tenant_id), 0, None)
    if info is None:
        raise LookupError(f"tenant {tenant_id!r} does not exist on {manager.settings.describe()}")
    if info.condition in (LINKED, LOCKED) or (info.condition == CORRUPT and not allow_data):
        # A link would drop another tenant's file; a lock or a corrupt file hides its rows.
        if audit:
            audit_trail.record("tenant.drop", tenant_id, info.location, audit_trail.REFUSED,
                               {"reason": info.detail, "force": allow_data})
        raise TenantUnreadableError(f"not dropping: {info.detail}"
                                    + ("; drop with --force to delete it anyway (a copy of "
                                       "its bytes is kept first)"
                                       if info.condition == CORRUPT else ""))
    return info


def _drop_guard(manager: TenantDatabaseManager, tenant_id: str, allow_data: bool,
                safety_dir: Path | None, pg_bin: str | None) -> ActGuard:
    dest = safety_dir or DEFAULT_SAFETY_DIR
    return ActGuard(tenant_id, "dropping it", allow_data,
                    backup=lambda raw: safety_backup(_where_it_is(manager, tenant_id),
                                                     tenant_id, dest, pg_bin, raw),
                    hint="back it up, then drop with --force (docex-ops backs it up first)")


def _where_it_is(manager: TenantDatabaseManager, tenant_id: str) -> Backend:
    """The backend that reads the tenant on its server whatever the directory says (a
    fleet marks a tenant ``dropping`` before its server drops it, and the safety backup
    is taken in between)."""
    return manager.topology.holder_of(tenant_id)


# ensure_role(backend of the tenant's server, tenant id) -> (role, created)
TENANT_ROLES = KindRegistry[Callable[[Backend, str], tuple[str, bool]]]("tenant roles", {
    "postgresql": "docex_ops.tenants.roles:ensure_tenant_role",
})
# release_role(backend, tenant id) -> (role, dropped, why), None: it had no role
TENANT_ROLE_RELEASE = KindRegistry[Callable[[Backend, str], tuple[str, bool, str] | None]](
    "tenant role release", {"postgresql": "docex_ops.tenants.roles:release_tenant_role"})
NO_ROLES = "tenant roles need PostgreSQL: SQLite has no roles"


def has_roles(manager: TenantDatabaseManager) -> bool:
    """Whether the configured kind of database gives tenants roles of their own."""
    return manager.backend.kind in TENANT_ROLES.kinds


def ensure_tenant_role(manager: TenantDatabaseManager, tenant_id: str) -> str:
    """PostgreSQL: the login-less role ``docex_t_<id>`` owning only the tenant's schema
    (on a fleet, on the tenant's server: roles are per server)."""
    tenant_id = validate_tenant_id(tenant_id)
    if not has_roles(manager):
        raise RuntimeError(NO_ROLES)
    backend = manager.backend_of(tenant_id)
    return TENANT_ROLES.for_kind(backend.kind)(backend, tenant_id)[0]
