"""Proving an online Citus schema move: the tenant's rows on the target node against the
copy Citus switched from, row by row.

Writes go on during an online move until Citus's own short block at its switch, so a
digest before and one after differ by the writes meanwhile. What can be compared
exactly is the source copy *at the switch*: Citus keeps the source shards (its deferred
cleanup drops them later) and no write reaches them after it; a lock taken on them
before the move keeps them until they are compared (``RetainedSource``).

The comparison streams both sides in primary-key order and merges them (constant
memory): every row of the source copy must be on the target, with the same content
unless a write after the switch changed it. A changed row's version on the target must
be newer (xmin) than every row Citus copied unchanged: its copy and change stream
commit on the target before the switch, later writes get newer transaction ids. A row
only on the target is a write after the switch (nothing of the source is missing for
it): Citus's last applied changes may commit just after the first writes routed to the
target, so its age proves nothing either way. The target is read in one snapshot taken
as soon as Citus returns: a row deleted, or changed back and forth, in the moments
between the switch and that snapshot is reported (a false alarm is possible there, a
silent loss is not).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from docex_ops.topology.citus import CitusCluster, CitusNode

# Each DocEX table and the name of its shard (the same on every node: a move keeps it).
_SHARDS_SQL = """
SELECT c.relname::text, shard_name(p.logicalrelid, sh.shardid)
FROM pg_dist_partition p
JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid
JOIN pg_class c ON c.oid = p.logicalrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(s)s ORDER BY 1
"""
_BATCH = 20_000


@dataclass(frozen=True)
class RowComparison:
    rows: int              # rows on the target
    missing: int           # rows of the source copy not on the target unchanged, not explained
    written_after: int     # target rows new or changed since the switch (explained)
    tables: list[str]      # tables with unexplained differences
    examples: tuple[str, ...] = ()  # a few unexplained rows, "table.key (how)"

    @property
    def equal(self) -> bool:
        return not self.tables


def shard_tables(coordinator: Connection, schema: str) -> dict[str, str]:
    """DocEX table -> its shard's qualified name, read on the coordinator."""
    return dict(coordinator.exec_driver_sql(_SHARDS_SQL, {"s": schema}).all())


def worker_engine(cluster: CitusCluster, node: CitusNode) -> Engine:
    """An engine to one worker node: the coordinator's credentials, the node's address."""
    pg = replace(cluster.coordinator.settings.postgres, host=node.host, port=node.port)
    return create_engine(pg.url("docex-ops citus move"), poolclass=NullPool)


class RetainedSource:
    """The source shards, locked (ACCESS SHARE) before the move so Citus's deferred
    cleanup cannot drop them until ``compare`` has read them; released on exit."""

    def __init__(self, conn: Connection, shards: dict[str, str]) -> None:
        self.conn, self.shards = conn, shards

    def compare(self, target: Engine) -> RowComparison:
        with target.connect() as there:
            there.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            rows, written, missing, tables = 0, 0, 0, []
            examples: list[str] = []
            for table, shard in self.shards.items():
                counted = _compare_table(self.conn, there, table, shard)
                rows += counted[0] if table != "alembic_version" else 0  # as digests count
                written += counted[1]
                if counted[2]:
                    missing += len(counted[2])
                    tables.append(table)
                    examples += [f"{table}.{key}" for key in counted[2][:3]]
            there.rollback()
        return RowComparison(rows, missing, written, tables, tuple(examples[:5]))


@contextmanager
def retained_source(source: Engine, shards: dict[str, str], lock_timeout: float
                    ) -> Iterator[RetainedSource]:
    with source.connect() as conn, conn.begin():
        conn.exec_driver_sql("SELECT set_config('lock_timeout', %(v)s, true)",
                             {"v": f"{int(lock_timeout * 1000)}ms"})
        for shard in shards.values():  # a read holds ACCESS SHARE until the end (Citus
            conn.exec_driver_sql(f"SELECT FROM {shard} LIMIT 0")  # refuses LOCK on shards)
        yield RetainedSource(conn, shards)


def _stream(conn: Connection, sql: str) -> Iterator[tuple[str, int, int]]:
    result = conn.execution_options(stream_results=True, yield_per=_BATCH).exec_driver_sql(sql)
    for row in result:
        yield row[0], int(row[1]), int(row[2])


def _rows_sql(table: str, shard: str) -> str:
    # The primary key (alembic_version's is its one column); age(xmin): transactions
    # since the row version was written (smaller is newer).
    key = "version_num" if table == "alembic_version" else "id"
    return (f"SELECT x.{key}::text, hashtextextended(x::text, 0), age(x.xmin) FROM {shard} x "
            f"ORDER BY x.{key}::text COLLATE \"C\"")


def _compare_table(source: Connection, target: Connection, table: str, shard: str
                   ) -> tuple[int, int, list[str]]:
    """(rows on the target, rows written since the switch, unexplained rows "key (how)")."""
    theirs = _stream(target, _rows_sql(table, shard))
    ours = _stream(source, _rows_sql(table, shard))
    newest_copied: int | None = None    # smallest age among rows copied unchanged
    lost: list[str] = []
    written: list[tuple[int, str]] = []  # (age, "key (how)") of target rows new or changed
    rows = 0
    mine, other = next(ours, None), next(theirs, None)
    while mine is not None or other is not None:
        if other is not None and (mine is None or other[0] < mine[0]):
            written.append((other[2], f"{other[0]} (only on the target)"))
            rows += 1
            other = next(theirs, None)
        elif other is None or (mine is not None and mine[0] < other[0]):
            assert mine is not None
            lost.append(f"{mine[0]} (not on the target)")
            mine = next(ours, None)
        else:
            assert mine is not None
            rows += 1
            if mine[1] == other[1]:
                newest_copied = other[2] if newest_copied is None else min(newest_copied,
                                                                           other[2])
            else:
                written.append((other[2], f"{other[0]} (changed)"))
            mine, other = next(ours, None), next(theirs, None)
    older = [how for age, how in written if newest_copied is not None
             and age >= newest_copied and how.endswith("(changed)")]
    return rows, len(written) - len(older), lost + older


def describe(comparison: RowComparison) -> str:
    return (f"{comparison.missing} row(s) differ between the copy Citus switched from and "
            f"the target, not explained by later writes (tables "
            f"{', '.join(comparison.tables)}; e.g. {', '.join(comparison.examples)})")
