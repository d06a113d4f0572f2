"""Lock retries: a tenant whose lock could not be had within the lock timeout is tried
again, each attempt its own transaction, after an exponential backoff with jitter (so
retrying tenants do not all come back at once behind the same long query). The tenant
that keeps failing names who blocks it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from docex_ops.backends.registry import KindRegistry
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.migrate.tenant import StepOptions, TenantResult, TenantStep, migrate_tenant

if TYPE_CHECKING:
    from docex_ops.backends.base import Backend

BACKOFF_BASE = 0.5   # seconds before the first retry, doubled each time
BACKOFF_CAP = 30.0
# How each kind reports a lock that could not be had within the timeout.
LOCK_FAILURES = ("LockNotAvailable", "lock timeout", "database is locked")

BlockersFn = Callable[["Backend", str], str]
BLOCKERS = KindRegistry[BlockersFn]("lock blockers", {
    "postgresql": "docex_ops.migrate.pg_blockers:blockers",
    "sqlite": "docex_ops.migrate.retry:sqlite_blockers",
})


def is_lock_failure(result: TenantResult) -> bool:
    return result.status == "failed" and any(m in (result.error or "") for m in LOCK_FAILURES)


def backoff(retry: int, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds before retry number ``retry`` (1, 2, ...): base x 2^(retry-1), capped, with
    jitter between half and all of it."""
    return float(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (retry - 1)) * rng(0.5, 1.0))


def migrate_with_retries(backend: Backend, scripts: MigrationScripts, step: TenantStep,
                         options: StepOptions,
                         sleep: Callable[[float], None] = time.sleep) -> TenantResult:
    """``migrate_tenant``, retried up to ``options.lock_retries`` times on lock timeouts."""
    started = time.perf_counter()
    attempt = 1
    result = migrate_tenant(backend, scripts, step, options)
    while is_lock_failure(result) and attempt <= options.lock_retries:
        sleep(backoff(attempt))
        attempt += 1
        result = migrate_tenant(backend, scripts, step, options)
    if is_lock_failure(result):
        who = BLOCKERS.for_kind(backend.kind)(backend, step.tenant_id)
        tries = f" after {attempt} attempts" if attempt > 1 else ""
        result = replace(result, error=f"{result.error}{tries}" + (f"; blocked by {who}"
                                                                   if who else ""))
    return replace(result, attempts=attempt, seconds=time.perf_counter() - started)


def sqlite_blockers(backend: Backend, tenant_id: str) -> str:
    """SQLite names no process: the file's write lock is held by another connection."""
    return f"another connection holding {backend.location(tenant_id)}'s write lock"
