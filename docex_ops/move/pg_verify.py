"""Proving a move's copy equal to its source with only a short write freeze.

Checksumming a large tenant takes seconds per side, too long to hold writes.
So the full comparison runs at a *checkpoint* instead: under a brief freeze
(locks taken, zero lag reached) a REPEATABLE READ snapshot is taken on each
side, the freeze ends, and both snapshots, which hold the same rows, are
checksummed while writes go on. The final freeze then only has to prove that
what changed since the checkpoint changed alike:

- every table's row count, on both sides;
- the rows written since the checkpoint on either side (row versions whose
  ``xmin`` the checkpoint's snapshot did not yet see), compared by checksum
  on both sides, by primary key.

Why that suffices: the two copies were equal at the checkpoint, and a row
untouched on both sides since then is still equal. A row inserted or updated
on either side carries a newer ``xmin`` and is compared; a row deleted on one
side only leaves the other side a row more, which the counts show (or, if a
row went missing as well, that row is compared). Taking more rows than
changed costs time, never correctness, so the ``xmin`` test errs towards
taking more (it compares against the snapshot's oldest running transaction).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from docex_ops.backends.digest import TableDigest, unordered_digest_sql
from docex_ops.backends.postgres import PostgresBackend, quote_ident
from docex_ops.move import pg_online as pgm
from docex_ops.schema.names import TABLE_NAMES

# More changed rows than this in one table: digest the whole table instead.
DELTA_LIMIT = 200_000

# A row version is "new" when its xmin is at or after the checkpoint's oldest running
# transaction, in 32-bit xid arithmetic (less than 2^31 transactions apart, which
# wraparound protection guarantees). The xmin column keeps the raw xid after VACUUM
# FREEZE, so a row frozen since the checkpoint still counts as new.
_NEW_ROW = ("((x.xmin::text::bigint - {low}) & 4294967295) < 2147483648")


@dataclass(frozen=True)
class Checkpoint:
    """Where the two copies are compared in full: the oldest transaction each side's
    snapshot still saw as running (a 32-bit xid), and how long writes waited for it."""

    source_low_xid: int
    target_low_xid: int
    freeze_seconds: float


@dataclass(frozen=True)
class Comparison:
    differ: list[str]   # tables whose counts or checksums differ
    rows: int           # rows on the source


_SNAPSHOT_SQL = "SELECT mod(pg_snapshot_xmin(pg_current_snapshot())::text::bigint, 4294967296)"


def _take_snapshot(conn: Connection) -> int:
    """In a transaction just begun (nothing run yet): fix its snapshot now."""
    conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    conn.exec_driver_sql(pgm.DIGEST_SETTINGS)
    return int(conn.exec_driver_sql(_SNAPSHOT_SQL).scalar_one())  # the snapshot is taken here


@contextmanager
def snapshot_pair(source: PostgresBackend, target: PostgresBackend, schema: str,
                  lock_timeout: float, catch_up_timeout: float
                  ) -> Iterator[tuple[Connection, Connection, Checkpoint]]:
    """Two read-only transactions, on source and target, seeing the same tenant rows.

    Taken under a brief write freeze once the target has applied everything;
    the freeze ends before this yields, so writes go on while the caller reads.
    """
    with ExitStack() as stack:
        src, tgt = (stack.enter_context(side.admin_engine.connect()) for side in (source, target))
        for conn in (src, tgt):
            stack.enter_context(conn.begin())  # read-only; ends with the block
        frozen_at = time.perf_counter()
        with pgm.write_freeze(source, schema, lock_timeout) as frozen:
            pgm.wait_caught_up(frozen, source, schema, catch_up_timeout)
            low_xids = _take_snapshot(src), _take_snapshot(tgt)
        yield src, tgt, Checkpoint(*low_xids, time.perf_counter() - frozen_at)


def compare_in_full(source: Connection, target: Connection, schema: str) -> Comparison:
    """Counts and checksums of every table on both sides (at the checkpoint: in the two
    snapshots; offline: the frozen source and the finished copy), read side by side."""
    with ThreadPoolExecutor(1) as pool:
        copied = pool.submit(pgm.digest_in, target, schema)
        original = pgm.digest_in(source, schema)
        there = copied.result()
    return Comparison(sorted(t for t in set(original) | set(there)
                             if original.get(t) != there.get(t)),
                      sum(d.rows for d in original.values()))


def _tables(conn: Connection, schema: str) -> list[str]:
    found = set(conn.exec_driver_sql(
        "SELECT tablename FROM pg_tables WHERE schemaname = %(s)s", {"s": schema}).scalars())
    return [t for t in TABLE_NAMES if t in found]


def _counts_and_new_ids(conn: Connection, schema: str, tables: list[str], low_xid: int
                        ) -> dict[str, tuple[int, set[str]]]:
    """Per table: its row count and the ids of the rows written since the checkpoint."""
    if not tables:
        return {}
    new_row = _NEW_ROW.format(low=int(low_xid))
    sql = " UNION ALL ".join(
        f"SELECT '{t}', count(*), coalesce(array_agg(x.id::text) FILTER (WHERE {new_row}), "
        f"'{{}}') FROM {quote_ident(schema)}.{quote_ident(t)} x" for t in tables)
    return {table: (int(count), set(ids)) for table, count, ids in conn.exec_driver_sql(sql)}


def _digest_rows(conn: Connection, schema: str, table: str, ids: list[str] | None
                 ) -> TableDigest:
    where = None if ids is None else "x.id::text = ANY(%(ids)s)"
    _, count, value = conn.exec_driver_sql(unordered_digest_sql(schema, table, [], where),
                                           {"ids": ids}).one()
    return TableDigest(int(count), str(value))


def compare_changes(source: Connection, target: Connection, schema: str,
                    checkpoint: Checkpoint) -> Comparison:
    """With writes frozen and the target caught up: do the two copies, equal at the
    checkpoint, still agree? (Counts, and the rows either side wrote since.)"""
    tables, on_target = _tables(source, schema), _tables(target, schema)
    with ThreadPoolExecutor(1) as pool:  # the target's side, while this thread reads the source
        there = pool.submit(_counts_and_new_ids, target, schema, on_target,
                            checkpoint.target_low_xid)
        here = _counts_and_new_ids(source, schema, tables, checkpoint.source_low_xid)
        copied = there.result()
        differ = sorted(set(tables) ^ set(on_target))  # a table on one side only
        differ += [t for t in tables if t in copied and here[t][0] != copied[t][0]]
        for table in tables:
            changed = here[table][1] | copied.get(table, (0, set()))[1]
            if table in differ or not changed:
                continue
            ids = sorted(changed) if len(changed) <= DELTA_LIMIT else None
            theirs = pool.submit(_digest_rows, target, schema, table, ids)
            if _digest_rows(source, schema, table, ids) != theirs.result():
                differ.append(table)
    return Comparison(sorted(differ), sum(count for count, _ in here.values()))
