"""``tenants move`` on a Citus cluster: ``citus_schema_move``, wrapped the docex-ops way.

Citus moves a distributed schema (all its colocated tables) to another worker node:
online by logical replication (``shard_transfer_mode => 'auto'``) or with the tenant's
writes blocked (``--offline``: ``'block_writes'``). docex-ops adds what its own moves
have: the tenant's rows proven equal on both sides, the move journal on the control
server (the coordinator), the audit line.

- offline: one coordinator transaction holds the tenant's writes (EXCLUSIVE locks on its
  tables: writes wait, reads go), digests the tenant, moves it, digests it again where
  it now is, and commits only if the digests are equal and Citus's metadata names the
  target; otherwise that transaction, Citus's move with it, rolls back.
- online: Citus copies and switches while writes go on; the copy it switched from is
  then compared with the target row by row (citus_verify.py).

Journal: started, copying, switched. Citus switches its metadata in one transaction at
the end of a move, so a rerun after a crash reads where the schema is: on the target,
the move is recorded completed; elsewhere, rolled back (the half-made copy on the
target is dropped then, by Citus's cleanup of orphaned resources). A finished Citus
move leaves no old copy, so there is nothing to ``--finish``; the next move of the
tenant replaces its journal row. No printing here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from docex_ops import audit_trail
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move import citus_verify as cv
from docex_ops.move import pg_online as pgm
from docex_ops.move.journal import COPYING, STARTED, SWITCHED, MoveJournal, MoveRecord
from docex_ops.move.run import MoveOptions, MoveResult, StepHook
from docex_ops.tenancy import validate_tenant_id
from docex_ops.topology.citus import CitusCluster, CitusNode, distribute_remedy
from docex_ops.topology.directory import TenantDirectory

ONLINE, OFFLINE = "auto", "block_writes"  # Citus's shard_transfer_mode values
_MOVE_SQL = ("SELECT citus_schema_move(quote_ident(%(s)s)::regnamespace, %(h)s, %(p)s, "
             "%(m)s::citus.shard_transfer_mode)")

# Citus's online move ends by blocking writes, reading the source's WAL *write* position
# (pg_current_wal_lsn()) and waiting until its subscription reports it; the walsender
# sends only flushed WAL. A commit acknowledged with synchronous_commit=off may not be
# written yet, so Citus can switch without it and drop it with the source shards (seen
# under load: the last 10-17 writes before the switch, acknowledged and gone). docex-ops'
# own move flushes first (pg_online.py); Citus's online move is refused on such a source.
# The server's setting, or one for the database or a role (what Citus's sessions get).
_ASYNC_COMMIT_SQL = """
SELECT current_setting('synchronous_commit') = 'off' OR EXISTS (
    SELECT FROM pg_db_role_setting s, unnest(s.setconfig) c
    WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database
                                WHERE datname = current_database()))
      AND lower(c) IN ('synchronous_commit=off', 'synchronous_commit=false',
                       'synchronous_commit=no', 'synchronous_commit=0'))
"""


def citus_of(manager: TenantDatabaseManager) -> CitusCluster:
    return manager.topology.citus_cluster("a Citus move needs database.postgres.topology: "
                                          "citus")


def journal_of(cluster: CitusCluster) -> MoveJournal:
    """The move journal on the coordinator, in the control schema (beside the run records;
    its tenant directory table stays empty: Citus's metadata says where tenants are)."""
    return MoveJournal(TenantDirectory(cluster.coordinator))


def check_node_name(cluster: CitusCluster, name: str) -> None:
    """LookupError unless ``name`` could name a worker (asks the cluster nothing)."""
    if not cluster.citus.names_a_node(name):
        configured = ", ".join(n for n, _ in cluster.citus.nodes)
        raise LookupError(f"{name!r} is not a worker node: give host:port"
                          + (f" or one of the names in database.postgres.nodes ({configured})"
                             if configured else ""))


def resolve_node(cluster: CitusCluster, name: str) -> CitusNode:
    """The active worker named ``name`` (a configured name or host:port); LookupError."""
    check_node_name(cluster, name)
    workers = cluster.worker_nodes()
    for node in workers:
        if name in (node.name, f"{node.host}:{node.port}"):
            return node
    raise LookupError(f"no active worker node {name!r} in the Citus cluster; worker nodes: "
                      + (", ".join(n.name for n in workers) or "none"))


def asynchronous_nodes(cluster: CitusCluster, nodes: list[CitusNode]) -> list[CitusNode]:
    """Those of ``nodes`` where a session can commit with synchronous_commit off (the
    server's setting, or one for the database or a role): Citus's online move from them
    can lose the last acknowledged writes."""
    found = []
    for node in nodes:
        engine = cv.worker_engine(cluster, node)
        try:
            with engine.connect() as conn:
                if conn.exec_driver_sql(_ASYNC_COMMIT_SQL).scalar():
                    found.append(node)
        finally:
            engine.dispose()
    return found


def refuse_asynchronous_commit(cluster: CitusCluster, nodes: list[CitusNode],
                               what: str) -> None:
    """RuntimeError naming the first of ``nodes`` that commits asynchronously."""
    found = asynchronous_nodes(cluster, nodes)
    if found:
        node = found[0]
        raise RuntimeError(
            f"{what}: node {node.name!r} commits asynchronously (synchronous_commit = off "
            "for the server, the database or a role), and Citus's online move can then "
            "switch before the last acknowledged writes are replicated; move with "
            f"--offline, or set synchronous_commit = on on {node.name!r}")


def move_tenant(manager: TenantDatabaseManager, tenant_id: str, target: str,
                options: MoveOptions | None = None, on_step: StepHook | None = None
                ) -> MoveResult:
    """Move one tenant's distributed schema to worker ``target`` (or, after a crash,
    record how the interrupted move ended)."""
    options = options or MoveOptions()
    tenant_id = validate_tenant_id(tenant_id)
    cluster = citus_of(manager)
    node = resolve_node(cluster, target)  # a name refused before any SQL, a worker read
    journal = journal_of(cluster)
    with pgm.move_lock(cluster.coordinator, tenant_id):
        started = time.perf_counter()
        pending = journal.get(tenant_id)
        if pending is not None and pending.step != SWITCHED:
            return recover(cluster, journal, pending, started)
        source = _placed_node(cluster, tenant_id)
        schema = cluster.location(tenant_id)
        if source == node.name:
            return MoveResult(tenant_id, source, node.name, None, "unchanged", 0, None,
                              time.perf_counter() - started)
        if not options.offline:
            refuse_asynchronous_commit(cluster, [resolve_node(cluster, source)],
                                       f"tenant {tenant_id!r}")
        record = _start(journal, tenant_id, source, node.name, schema)
        step = on_step or (lambda _: None)
        step(STARTED)
        mode = OFFLINE if options.offline else ONLINE
        try:
            rows, freeze = (_move_offline if options.offline else _move_online)(
                cluster, journal, record, node, options, step)
        except Exception:
            reached = journal.get(tenant_id)
            detail = {"from": source, "to": node.name, "mode": mode, "topology": "citus"}
            if cluster.node_of(tenant_id) == node.name:  # switched, the proof failed: say so
                journal.step(tenant_id, SWITCHED)
            else:  # Citus did not switch (or rolled back with the transaction): nothing moved
                with journal.directory.transaction() as conn:
                    journal.delete(conn, tenant_id)
                _drop_half_made_copy(cluster)
                detail["rolled_back_at"] = reached.step if reached else STARTED
            audit_trail.record("tenant.move", tenant_id, schema, audit_trail.FAILED, detail)
            raise
        journal.step(tenant_id, SWITCHED)
        step(SWITCHED)
    audit_trail.record("tenant.move", tenant_id, schema, audit_trail.OK,
                       {"from": source, "to": node.name, "rows": rows, "mode": mode,
                        "topology": "citus",
                        "freeze_s": None if freeze is None else round(freeze, 3)})
    return MoveResult(tenant_id, source, node.name, None, "moved", rows, freeze,
                      time.perf_counter() - started)


def _drop_half_made_copy(cluster: CitusCluster) -> None:
    """Drop the shards a move that did not switch left on its target now, rather than at
    Citus's deferred cleanup (``citus.defer_shard_delete_interval``) after this returns.
    Citus drops each with a 1 s lock timeout and leaves a busy one to that later cleanup."""
    with cluster.coordinator.admin_engine.connect() as conn:
        # A procedure that refuses to run inside a transaction block.
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "CALL citus_cleanup_orphaned_resources()")


def _placed_node(cluster: CitusCluster, tenant_id: str) -> str:
    placed = cluster.placements([tenant_id])[tenant_id]
    if placed is None:
        raise LookupError(f"tenant {tenant_id!r} does not exist on "
                          f"{cluster.coordinator.settings.describe()}")
    if not placed.distributed:
        raise RuntimeError(f"tenant {tenant_id!r} is not a distributed schema (it is on the "
                           f"coordinator); distribute it first: "
                           f"`{distribute_remedy(tenant_id)}`")
    if placed.node is None:
        raise RuntimeError(f"tenant {tenant_id!r} has no single worker node (nodes: "
                           f"{', '.join(placed.nodes) or 'none, it has no tables'})")
    return placed.node


def _start(journal: MoveJournal, tenant_id: str, source: str, target: str,
           schema: str) -> MoveRecord:
    now = datetime.now(UTC)
    # No renamed copy on Citus: old_schema is the schema itself (the column is required).
    record = MoveRecord(tenant_id, source, target, schema, schema, STARTED, now, now)
    with journal.directory.transaction() as conn:
        journal.directory.lock(conn, tenant_id)
        journal.delete(conn, tenant_id)  # the previous, finished Citus move of the tenant
        journal.start(conn, record)
    return record


def _call_move(conn: Connection, schema: str, node: CitusNode, mode: str) -> None:
    conn.exec_driver_sql(_MOVE_SQL, {"s": schema, "h": node.host, "p": node.port, "m": mode})


def _move_offline(cluster: CitusCluster, journal: MoveJournal, record: MoveRecord,
                  node: CitusNode, options: MoveOptions, step: StepHook
                  ) -> tuple[int, float | None]:
    """Digest, move (block_writes), digest again, all in the transaction holding writes."""
    frozen_at = time.perf_counter()
    with pgm.write_freeze(cluster.coordinator, record.schema, options.lock_timeout) as frozen:
        before = pgm.digest_in(frozen, record.schema)
        journal.step(record.tenant_id, COPYING)
        step(COPYING)
        _call_move(frozen, record.schema, node, OFFLINE)
        after = pgm.digest_in(frozen, record.schema)
        now = cluster.placements_in(frozen, [record.schema])[record.schema].node
        differ = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
        if now != node.name or differ:
            raise pgm.MoveError(
                f"tenant {record.tenant_id!r}: after citus_schema_move the tenant is on "
                f"{now!r}, expected {node.name!r}" if now != node.name else
                f"tenant {record.tenant_id!r}: the rows on {node.name!r} differ from the "
                f"source in {', '.join(differ)}; the move was rolled back and the tenant "
                f"stays on {record.source!r}")
    return sum(d.rows for d in after.values()), time.perf_counter() - frozen_at


def _move_online(cluster: CitusCluster, journal: MoveJournal, record: MoveRecord,
                 node: CitusNode, options: MoveOptions, step: StepHook
                 ) -> tuple[int, float | None]:
    """Citus's logical move, then its source copy compared with the target row by row."""
    source_node = resolve_node(cluster, record.source)
    with cluster.coordinator.admin_engine.connect() as conn:
        shards = cv.shard_tables(conn, record.schema)
        conn.rollback()
    source, target = cv.worker_engine(cluster, source_node), cv.worker_engine(cluster, node)
    try:
        with cv.retained_source(source, shards, options.lock_timeout) as kept:
            journal.step(record.tenant_id, COPYING)
            step(COPYING)
            with cluster.coordinator.admin_engine.connect() as conn:
                # Logical replication cannot run inside a transaction block.
                _call_move(conn.execution_options(isolation_level="AUTOCOMMIT"),
                           record.schema, node, ONLINE)
            compared = kept.compare(target)
    finally:
        source.dispose()
        target.dispose()
    if not compared.equal:
        raise pgm.MoveError(f"tenant {record.tenant_id!r}: Citus moved it to {node.name!r}, "
                            f"but {cv.describe(compared)}; it is served from {node.name!r} "
                            "now: check it against its latest backup")
    return compared.rows, None


def recover(cluster: CitusCluster, journal: MoveJournal, record: MoveRecord,
            started: float) -> MoveResult:
    """A move a crash interrupted: Citus either switched the schema or did not."""
    done = cluster.node_of(record.tenant_id) == record.target
    if done:
        journal.step(record.tenant_id, SWITCHED)
    else:
        with journal.directory.transaction() as conn:
            journal.delete(conn, record.tenant_id)
        _drop_half_made_copy(cluster)
    audit_trail.record("tenant.move", record.tenant_id, record.schema,
                       audit_trail.OK if done else audit_trail.FAILED,
                       {"from": record.source, "to": record.target, "topology": "citus",
                        "recovered_at": record.step})
    with pgm.reading(cluster.coordinator) as conn:
        rows = sum(d.rows for d in pgm.digest_in(conn, record.schema).values())
    return MoveResult(record.tenant_id, record.source, record.target, None,
                      "completed" if done else "rolled back", rows, None,
                      time.perf_counter() - started)
