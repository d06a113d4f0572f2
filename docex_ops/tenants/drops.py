"""``tenants drop ID...``: several tenants, each on its own. No printing here.

Every id is checked (tenant rules, template) and every tenant looked up before anything
is dropped: a hostile id or a typo in the list drops nothing. Then each tenant is
dropped in its own transaction with its own safety backup (lifecycle.drop_tenant); a
refusal or failure is that tenant's result and the others go on. ``dry_run`` walks the
same list through the drop's own checks (lifecycle.check_drop) and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from docex_ops.backends.guards import DEFAULT_SAFETY_DIR
from docex_ops.executor import FailurePolicy, ProgressFn, make_executor
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import validate_all
from docex_ops.tenants.lifecycle import DropFailedError, RoleRelease, check_drop, drop_tenant
from docex_ops.topology.placement import interrupted_drop

DROPPED = "dropped"
WOULD_DROP = "would drop"
REFUSED = "refused"    # a check said no (rows without --force, dependents, foreign, locked)
FAILED = "failed"      # the drop was tried and the database or a file said no


@dataclass(frozen=True)
class TenantDrop:
    """What happened to (or, dry run, would happen to) one tenant."""

    tenant_id: str
    location: str
    action: str                        # DROPPED | WOULD_DROP | REFUSED | FAILED
    rows: int | None = None            # what it held; None when refused before counting
    safety_backup: Path | None = None  # the backup taken first (real run, rows held)
    backup_into: Path | None = None    # where its safety backup goes (rows held)
    role: RoleRelease | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def drop_tenants(manager: TenantDatabaseManager, tenant_ids: Sequence[str],
                 exclude: Sequence[str] = (), allow_data: bool = False,
                 safety_dir: Path | None = None, pg_bin: str | None = None,
                 dry_run: bool = False, progress: ProgressFn | None = None,
                 jobs: int = 1) -> list[TenantDrop]:
    """Drop (or, ``dry_run``, check) each named tenant but the excluded, ``jobs`` at once
    (each drop is its own transaction, lock and safety backup); results in list order.

    Raises before anything for a hostile id (TenantIdError), an unknown tenant
    (LookupError naming each) or an empty list (LookupError).
    """
    ids = _selected(manager, tenant_ids, exclude)
    dest = safety_dir or DEFAULT_SAFETY_DIR

    def one(tenant_id: str) -> TenantDrop:
        location = manager.backend.location(tenant_id)
        try:
            if dry_run:
                planned = check_drop(manager, tenant_id, allow_data=allow_data)
                return TenantDrop(tenant_id, location, WOULD_DROP, planned.rows,
                                  backup_into=dest if planned.rows else None)
            done = drop_tenant(manager, tenant_id, allow_data=allow_data,
                               safety_dir=safety_dir, pg_bin=pg_bin)
        except (SQLAlchemyError, OSError) as exc:
            return TenantDrop(tenant_id, location, FAILED, error=_line(exc))
        except DropFailedError as exc:
            return TenantDrop(tenant_id, location, FAILED, error=_line(exc))
        except (RuntimeError, LookupError) as exc:
            # The drop's refusals: GuardRefusal, TenantUnreadableError, TenantLockedError
            # (RuntimeErrors); LookupError: the tenant went away meanwhile.
            return TenantDrop(tenant_id, location, REFUSED, error=_line(exc))
        return TenantDrop(tenant_id, done.info.location, DROPPED, done.rows,
                          done.safety_backup, dest if done.safety_backup else None,
                          done.role)

    policy = FailurePolicy(continue_on_error=True)
    done = {r.tenant_id: r for r in make_executor(one, jobs, policy, progress).run(ids)}
    return [done[t] for t in ids]


def _selected(manager: TenantDatabaseManager, tenant_ids: Sequence[str],
              exclude: Sequence[str]) -> list[str]:
    """The ids to drop, in order, each known; every check before any drop."""
    named = list(dict.fromkeys(validate_all(tenant_ids)))
    excluded = set(validate_all(exclude))
    for tenant_id in named:
        manager.backend.location(tenant_id)  # ids the template cannot place
    ids = [t for t in named if t not in excluded]
    if not ids:
        raise LookupError("nothing to drop: name tenants (ID..., --tenants-file)"
                         + (", not all of them excluded" if named else ""))
    known = {t.tenant_id for t in manager.discover(False).tenants}
    missing = [t for t in ids if t not in known and not interrupted_drop(manager, t)]
    if missing:
        raise LookupError(f"no such tenant(s): {', '.join(missing)} on "
                          f"{manager.settings.describe()}; nothing was dropped")
    return ids


def _line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return lines[0] if lines else type(exc).__name__
