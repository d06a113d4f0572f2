"""``tenants move``: a tenant to another server, with a recorded step per stage.

Online (logical replication, a short freeze at the end) or offline (``pg_dump
| pg_restore`` inside the freeze, for servers without wal_level=logical); both
close the source the same way, so one recovery serves both.

Order matters for safety: the source is closed (frozen, verified, renamed)
before the directory names the target, so at no moment do two copies accept
writes; a crash in between leaves the tenant unavailable, never split, and
the rerun switches it. A rerun after a crash before the rename undoes the
move (the source never stopped serving). No printing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from docex_ops import audit_trail
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move import pg_acl as pg_move_acl
from docex_ops.move import pg_offline as pg_move_offline
from docex_ops.move import pg_online as pgm
from docex_ops.move import pg_verify as mv
from docex_ops.move.journal import (
    COPYING,
    RENAMED,
    STARTED,
    SWITCHED,
    SYNCED,
    VERIFIED,
    MoveRecord,
)
from docex_ops.tenancy import PG_IDENTIFIER_MAX_BYTES, role_name_for, validate_tenant_id
from docex_ops.topology.directory import ACTIVE, FROZEN, MOVING
from docex_ops.topology.several import PlacementError, SeveralServers

StepHook = Callable[[str], None]


@dataclass(frozen=True)
class MoveOptions:
    sync_timeout: float = 600.0     # initial copy
    catch_up_timeout: float = 30.0  # zero lag, inside the freeze
    lock_timeout: float = 10.0      # taking the freeze locks
    pg_bin: str | None = None
    offline: bool = False           # pg_dump | pg_restore with writes refused meanwhile


@dataclass(frozen=True)
class MoveResult:
    tenant_id: str
    source: str
    target: str
    old_schema: str | None        # the renamed source copy (None: the engine dropped it)
    outcome: str                  # moved | completed (a rerun) | rolled back | unchanged
    rows: int
    freeze_seconds: float | None
    seconds: float


def moved_name(schema: str, when: datetime) -> str:
    suffix = "_moved_" + when.strftime("%Y%m%d%H%M%S")
    return schema[:PG_IDENTIFIER_MAX_BYTES - len(suffix)] + suffix


def _fleet(manager: TenantDatabaseManager) -> SeveralServers:
    return manager.topology.several_servers(
        "tenants move needs database.postgres.servers with two or more servers")


def move_tenant(manager: TenantDatabaseManager, tenant_id: str, target: str,
                options: MoveOptions | None = None, on_step: StepHook | None = None
                ) -> MoveResult:
    """Move (or, after a crash, complete or undo the interrupted move of) one tenant."""
    options = options or MoveOptions()
    fleet = _fleet(manager)
    tenant_id = validate_tenant_id(tenant_id)
    with pgm.move_lock(fleet.servers[fleet.directory_server], tenant_id):
        return _move_locked(manager, fleet, tenant_id, target, options, on_step)


def _move_locked(manager: TenantDatabaseManager, fleet: SeveralServers, tenant_id: str,
                 target: str, options: MoveOptions, on_step: StepHook | None) -> MoveResult:
    started = time.perf_counter()
    pending = fleet.moves.get(tenant_id)
    if pending is not None and pending.step != SWITCHED:
        return recover(manager, pending, started)
    if pending is not None:
        raise PlacementError(f"tenant {tenant_id!r} was moved to {pending.target!r}; drop the "
                             f"old copy first with `docex-ops tenants move --finish {tenant_id}`")
    if target not in fleet.servers:
        raise LookupError(f"no server {target!r} is configured; configured: "
                          + ", ".join(fleet.servers))
    source = fleet.server_of(tenant_id)
    if source == target:
        raise PlacementError(f"tenant {tenant_id!r} is already on server {target!r}")
    if not options.offline:
        pgm.require_logical(fleet.servers[source], source)
    # Refused before anything is made on the target: a role it lacks would lose a grant.
    acl = pg_move_acl.read_live(fleet.servers[source], fleet.location(tenant_id))
    pg_move_acl.require_roles(fleet.servers[target], target, acl, role_name_for(tenant_id))
    record = _start(fleet, tenant_id, source, target)
    copy = _copy_offline_and_switch if options.offline else _copy_and_switch
    try:
        freeze, rows = copy(manager, fleet, record, options, on_step or (lambda _: None))
    except Exception:
        _roll_back(fleet, record)
        raise
    audit_trail.record("tenant.move", tenant_id, record.schema, audit_trail.OK,
                 {"from": source, "to": target, "freeze_s": round(freeze, 3), "rows": rows,
                  "mode": "offline" if options.offline else "online"})
    return MoveResult(tenant_id, source, target, record.old_schema, "moved", rows, freeze,
                      time.perf_counter() - started)


def _start(fleet: SeveralServers, tenant_id: str, source: str, target: str) -> MoveRecord:
    schema = fleet.location(tenant_id)
    now = datetime.now(UTC)
    record = MoveRecord(tenant_id, source, target, schema, moved_name(schema, now), STARTED,
                        now, now)
    with fleet.directory.transaction() as conn:
        fleet.directory.lock(conn, tenant_id)
        placed = fleet.directory.get(tenant_id, conn)
        if placed is None or placed.state != ACTIVE or placed.server != source:
            raise PlacementError(f"tenant {tenant_id!r} changed while the move started; retry")
        fleet.moves.start(conn, record)
        fleet.directory.set_state(conn, tenant_id, MOVING)
    return record


def _copy_and_switch(manager: TenantDatabaseManager, fleet: SeveralServers, record: MoveRecord,
                     options: MoveOptions, on_step: StepHook) -> tuple[float, int]:
    """Returns the write freeze in seconds and the rows moved."""
    source, target = fleet.servers[record.source], fleet.servers[record.target]
    on_step(STARTED)
    pgm.copy_structure(source.settings.postgres, target.settings.postgres, record.schema,
                       options.pg_bin)
    _carry_acl(fleet, record, pg_move_acl.read_live(source, record.schema))
    deferred = pgm.defer_secondary_indexes(target, record.schema)
    pgm.publish(source, record.schema)
    pgm.subscribe(target, source.settings.postgres, record.schema)
    _reached(fleet, record, COPYING, on_step)
    pgm.wait_synced(target, record.schema, options.sync_timeout)
    pgm.create_deferred(target, deferred)  # changes keep streaming meanwhile
    _reached(fleet, record, SYNCED, on_step)
    checkpoint = _verify_at_checkpoint(record, source, target, options)
    _reached(fleet, record, VERIFIED, on_step)
    frozen_at = time.perf_counter()
    with pgm.write_freeze(source, record.schema, options.lock_timeout) as frozen:
        pgm.wait_caught_up(frozen, source, record.schema, options.catch_up_timeout)
        pgm.unsubscribe(target, record.schema)  # the target stops applying: it is final now
        rows = _verify(record, frozen, target, checkpoint)
        pgm.rename_schema(frozen, record.schema, record.old_schema)
    _reached(fleet, record, RENAMED, on_step)
    _switch(fleet, record)
    freeze = time.perf_counter() - frozen_at
    manager.close_tenant_connection(record.tenant_id)
    pgm.unpublish(source, record.schema)
    return max(freeze, checkpoint.freeze_seconds), rows


def _copy_offline_and_switch(manager: TenantDatabaseManager, fleet: SeveralServers,
                             record: MoveRecord, options: MoveOptions, on_step: StepHook
                             ) -> tuple[float, int]:
    """The same steps with the copy inside the freeze: the directory refuses the tenant
    (``frozen``) and the locks hold writers of other processes until the source is renamed."""
    source, target = fleet.servers[record.source], fleet.servers[record.target]
    on_step(STARTED)
    frozen_at = time.perf_counter()
    _set_state(fleet, record, FROZEN)
    manager.close_tenant_connection(record.tenant_id)
    with pgm.write_freeze(source, record.schema, options.lock_timeout) as frozen:
        _reached(fleet, record, COPYING, on_step)
        pg_move_offline.dump_restore(source, target, record.schema, options.pg_bin)
        _carry_acl(fleet, record, pg_move_acl.read_acl(frozen, record.schema))
        _reached(fleet, record, SYNCED, on_step)
        rows = _verify(record, frozen, target)
        pgm.rename_schema(frozen, record.schema, record.old_schema)
    _reached(fleet, record, RENAMED, on_step)
    _switch(fleet, record)
    freeze = time.perf_counter() - frozen_at
    manager.close_tenant_connection(record.tenant_id)
    return freeze, rows


def _carry_acl(fleet: SeveralServers, record: MoveRecord, acl: pg_move_acl.SchemaAcl) -> None:
    """The source's owners and privileges on the target's copy (made without them)."""
    pg_move_acl.apply_acl(fleet.servers[record.target], record.target, acl,
                          role_name_for(record.tenant_id))


def _reached(fleet: SeveralServers, record: MoveRecord, step: str, on_step: StepHook) -> None:
    """Journal a step the move has reached, then tell the caller (tests crash here)."""
    fleet.moves.step(record.tenant_id, step)
    on_step(step)


def _set_state(fleet: SeveralServers, record: MoveRecord, state: str) -> None:
    with fleet.directory.transaction() as conn:
        fleet.directory.lock(conn, record.tenant_id)
        fleet.directory.set_state(conn, record.tenant_id, state)


def _verify_at_checkpoint(record: MoveRecord, source: PostgresBackend,
                          target: PostgresBackend, options: MoveOptions) -> mv.Checkpoint:
    """The full comparison, on two snapshots holding the same rows (writes go on)."""
    with mv.snapshot_pair(source, target, record.schema, options.lock_timeout,
                          options.catch_up_timeout) as (here, there, checkpoint):
        _refuse_differences(record, mv.compare_in_full(here, there, record.schema).differ)
    return checkpoint


def _verify(record: MoveRecord, frozen: Connection, target: PostgresBackend,
            checkpoint: mv.Checkpoint | None = None) -> int:
    """Inside the freeze: the frozen source against the target, rows (in full, or only
    what changed since ``checkpoint``), indexes, constraints, owners and privileges;
    returns the rows moved."""
    with pgm.reading(target) as there:
        compared = (mv.compare_in_full(frozen, there, record.schema) if checkpoint is None
                    else mv.compare_changes(frozen, there, record.schema, checkpoint))
        differ = compared.differ + _structure_differs(frozen, there, record.schema)
    _refuse_differences(record, differ)
    return compared.rows


def _structure_differs(source: Connection, target: Connection, schema: str) -> list[str]:
    """Indexes, constraints, owners and privileges that differ between the two sides."""
    acl = pg_move_acl.differences(source, target, schema)
    here, there = pgm.structure_in(source, schema), pgm.structure_in(target, schema)
    if here == there:
        return acl
    return ["indexes/constraints (" + "; ".join(sorted(set(here) ^ set(there)))[:300] + ")",
            *acl]


def _refuse_differences(record: MoveRecord, differ: list[str]) -> None:
    if differ:
        raise pgm.MoveError(f"tenant {record.tenant_id!r}: the copy on {record.target!r} "
                            f"differs from the source in {', '.join(differ)}; the move was "
                            "rolled back and the tenant stays on " + repr(record.source))


def _switch(fleet: SeveralServers, record: MoveRecord) -> None:
    with fleet.directory.transaction() as conn:
        fleet.directory.lock(conn, record.tenant_id)
        fleet.directory.set_state(conn, record.tenant_id, ACTIVE, server=record.target)
        fleet.moves.step(record.tenant_id, SWITCHED, conn)


def _roll_back(fleet: SeveralServers, record: MoveRecord) -> None:
    """Undo everything made on the target; the source, never closed, goes on serving."""
    source, target = fleet.servers[record.source], fleet.servers[record.target]
    pgm.unsubscribe(target, record.schema)
    pgm.drop_leftover_slot(source, record.schema)
    for server in (source, target):  # an offline copy a crashed mover left running
        pg_move_offline.stop_copiers(server, record.schema)
    pgm.unpublish(source, record.schema)
    pgm.drop_schema(target, record.schema)
    with fleet.directory.transaction() as conn:
        fleet.directory.lock(conn, record.tenant_id)
        fleet.directory.set_state(conn, record.tenant_id, ACTIVE, server=record.source)
        fleet.moves.delete(conn, record.tenant_id)
    audit_trail.record("tenant.move", record.tenant_id, record.schema, audit_trail.FAILED,
                 {"from": record.source, "to": record.target, "rolled_back_at": record.step})


def recover(manager: TenantDatabaseManager, record: MoveRecord, started: float) -> MoveResult:
    """Finish a move whose source was already closed; undo one that was not."""
    fleet = _fleet(manager)
    source = fleet.servers[record.source]
    closed = (not pgm.schema_exists(source, record.schema)
              and pgm.schema_exists(source, record.old_schema))
    if closed:  # renamed (maybe not yet recorded): the target copy is the tenant now
        pgm.unsubscribe(fleet.servers[record.target], record.schema)
        _switch(fleet, record)
        manager.close_tenant_connection(record.tenant_id)
        pgm.unpublish(source, record.schema)
        outcome = "completed"
    else:
        _roll_back(fleet, record)
        outcome = "rolled back"
    where = fleet.servers[record.target if closed else record.source]
    rows = sum(d.rows for d in pgm.digest_live(where, record.tenant_id).values())
    return MoveResult(record.tenant_id, record.source, record.target, record.old_schema,
                      outcome, rows, None, time.perf_counter() - started)


def finish_move(manager: TenantDatabaseManager, tenant_id: str, dry_run: bool = False
                ) -> MoveRecord:
    """Drop the renamed source copy of a completed move and forget the move."""
    fleet = _fleet(manager)
    record = fleet.moves.get(validate_tenant_id(tenant_id))
    if record is None:
        raise LookupError(f"tenant {tenant_id!r} has no move to finish")
    if record.step != SWITCHED:
        raise PlacementError(f"the move of {tenant_id!r} is at step {record.step!r}, not "
                             f"done: rerun `docex-ops tenants move {tenant_id} --to "
                             f"{record.target}` first")
    if dry_run:
        return record
    pgm.drop_schema(fleet.servers[record.source], record.old_schema)
    with fleet.directory.transaction() as conn:
        fleet.moves.delete(conn, record.tenant_id)
    audit_trail.record("tenant.move_finish", tenant_id, record.old_schema, audit_trail.OK,
                 {"server": record.source})
    return record
