"""Rules about the session: a lock that would queue behind a long query with no limit."""

from __future__ import annotations

from docex_ops.lint.findings import ERROR, Context, Finding, Statement
from docex_ops.lint.locks import BLOCKS_WRITES
from docex_ops.lint.rules_rewrite import finding


def missing_lock_timeout(stmt: Statement, ctx: Context) -> list[Finding]:
    """Once per revision: a write-blocking lock with neither the run's lock_timeout nor
    one the revision sets; a lock waiting in the queue blocks every query behind it."""
    if (ctx.lock_timeout or ctx.sets_lock_timeout or stmt.lock not in BLOCKS_WRITES
            or not ctx.existing(stmt.table)):
        return []
    ctx.sets_lock_timeout = True  # reported once
    return [finding(ctx, stmt, "lock-timeout", ERROR,
                    f"{stmt.lock} is requested with no lock_timeout: while it waits behind "
                    "a long query every read and write of the table queues behind it",
                    "run with --lock-timeout 2s --lock-retries 5 (or database.lock_timeout), "
                    "or SET lock_timeout in the revision")]
