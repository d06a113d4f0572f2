"""Migrate ONE tenant: one transaction for its whole path, verified before commit.

This is the per-tenant function that both ``docex-ops migrate`` and plain
``alembic`` (through env.py) run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from docex_ops.migrate.scripts import (
    ALEMBIC_LOCK,
    ATTR_CONNECTION,
    ATTR_FORCE,
    MigrationScripts,
)
from docex_ops.schema.names import TABLE_NAMES

if TYPE_CHECKING:
    from collections.abc import Callable

    from alembic.config import Config
    from sqlalchemy.engine import Connection

    from docex_ops.backends.base import Backend
    from docex_ops.backends.guards import ActGuard

ACTIONS = ("upgrade", "downgrade", "stamp")


@dataclass(frozen=True)
class TenantStep:
    """What the plan says to do with one tenant."""

    tenant_id: str
    location: str
    current: str | None
    target: str | None  # None = base
    action: str         # upgrade | downgrade | stamp


@dataclass(frozen=True)
class TenantResult:
    tenant_id: str
    from_rev: str | None
    to_rev: str | None
    status: str          # done | skipped | failed
    seconds: float
    error: str | None = None
    path: str = ""       # fast | online | stamp | "" (nothing ran)
    safety_backup: str | None = None  # the manifest of the backup a forced downgrade took
    attempts: int = 1    # more than one: retried after lock timeouts (migrate/retry.py)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class StepOptions:
    force: bool = False
    fast_path: bool = True
    lock_timeout: float | None = None  # None: the configured one (settings.lock_timeout)
    statement_timeout: float | None = None
    safety_dir: str | None = None  # where a forced downgrade backs a tenant up first
    pg_bin: str | None = None
    lock_retries: int = 0  # retries after a lock timeout, each its own transaction


def migrate_tenant(backend: Backend, scripts: MigrationScripts, step: TenantStep,
                   options: StepOptions) -> TenantResult:
    """Run one step; never raises: a failure is a result naming the database error."""
    started = time.perf_counter()
    before = step.current
    safety: Path | None = None
    try:
        lock_timeout = (backend.settings.lock_timeout if options.lock_timeout is None
                        else options.lock_timeout)
        with backend.migration_connection(step.tenant_id, lock_timeout,
                                          options.statement_timeout) as conn:
            before = backend.current_revision(conn)  # under the tenant lock: the truth
            if before == step.target:
                return TenantResult(step.tenant_id, before, before, "skipped",
                                    time.perf_counter() - started)
            if step.action == "downgrade":
                safety = guard_downgrade(backend, scripts, conn, step, before, options)
            path = _apply(backend, scripts, conn, step, before, options)
            backend.check_migrated(conn, step.tenant_id, step.target, deep=path == "online")
    except Exception as exc:  # noqa: BLE001 - reported per tenant, the run goes on
        return TenantResult(step.tenant_id, before, before, "failed",
                            time.perf_counter() - started, error=describe_error(exc),
                            safety_backup=str(safety) if safety else None)
    return TenantResult(step.tenant_id, before, step.target, "done",
                        time.perf_counter() - started, path=path,
                        safety_backup=str(safety) if safety else None)


def guard_downgrade(backend: Backend, scripts: MigrationScripts, conn: Connection,
                    step: TenantStep, before: str | None, options: StepOptions) -> Path | None:
    """In the migration's own transaction, before any step runs: a downgrade that loses
    data is refused for a tenant holding rows in DocEX's tables (naming them) unless
    forced; forced, the tenant is backed up first, its tables held against writers from
    that backup to the commit (guards.ActGuard). Returns the backup's manifest."""
    from docex_ops.backends.guards import DEFAULT_SAFETY_DIR
    from docex_ops.backup.create import safety_backup  # backup imports migrate

    dest = Path(options.safety_dir) if options.safety_dir else DEFAULT_SAFETY_DIR
    guard = downgrade_guard(scripts, step, before, options.force,
                            lambda raw: safety_backup(backend, step.tenant_id, dest,
                                                      options.pg_bin, raw))
    if guard is None:
        return None
    guard(backend.lock_contents(conn, step.tenant_id))
    return guard.safety_backup


def downgrade_guard(scripts: MigrationScripts, step: TenantStep, before: str | None,
                    force: bool, backup: Callable[[bool], Path]) -> ActGuard | None:
    """The guard of a downgrade step (None: nothing to guard); --dry-run checks with it too."""
    from docex_ops.backends.guards import ActGuard

    losses = scripts.data_loss(before, step.target)
    if not losses and not force:
        return None
    return ActGuard(step.tenant_id, f"the downgrade to {step.target or 'base'}", force,
                    backup=backup,
                    harm=f"would lose data ({'; '.join(losses)})" if losses else "",
                    hint="rerun with --force (docex-ops backs each such tenant up first)",
                    matters=lambda table: table in TABLE_NAMES)


def _apply(backend: Backend, scripts: MigrationScripts, conn: Connection, step: TenantStep,
           before: str | None, options: StepOptions) -> str:
    if step.action == "upgrade" and options.fast_path and step.target is not None:
        sql = scripts.rendered_upgrade(conn.dialect.name, before, step.target)
        if sql is not None:
            backend.execute_script(conn, sql)
            return "fast"
    run_online(scripts, conn, step.action, step.target, options.force)
    return "stamp" if step.action == "stamp" else "online"


def run_online(scripts: MigrationScripts, conn: Connection, action: str, target: str | None,
               force: bool = False) -> None:
    """Alembic's own command on this connection (env.py sees it and runs in it).

    Serialised process-wide (see ALEMBIC_LOCK): online steps run one at a time
    while fast-path tenants keep the other workers busy.
    """
    config = scripts.config()
    config.attributes[ATTR_CONNECTION] = conn
    config.attributes[ATTR_FORCE] = force
    with ALEMBIC_LOCK:
        _run_command(config, action, target)


def _run_command(config: Config, action: str, target: str | None) -> None:
    from alembic import command  # Alembic only when a revision runs

    if action == "upgrade":
        command.upgrade(config, target or "base")
    elif action == "downgrade":
        command.downgrade(config, target or "base")
    elif action == "stamp":
        command.stamp(config, target or "base", purge=True)
    else:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")


def describe_error(exc: BaseException) -> str:
    """One line: the database's own message where there is one."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if orig is None else f"{type(orig).__name__}: {first}"
