"""What a rule reports, and what rules see: one statement and the revision's context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR = "error"      # stops ``migrate upgrade`` unless waived
WARNING = "warning"  # shown, never stops a run


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    revision: str
    dialect: str
    statement: str
    why: str
    instead: str              # the safe alternative
    table: str | None = None
    lock: str | None = None
    scans: bool = False       # the lock is held while the whole table is read or copied
    rows: int | None = None   # the largest tenant table of that name, from pg_class.reltuples
    worst_seconds: float | None = None  # how long the lock is held at worst, from the scan rate
    waived: str | None = None  # the reason, when a waiver covers it

    @property
    def stops(self) -> bool:
        return self.severity == ERROR and self.waived is None


@dataclass(frozen=True)
class Statement:
    """One parsed statement: its text, pglast node, the table it touches and its lock."""

    sql: str
    node: Any
    table: str | None
    lock: str | None


@dataclass
class Context:
    """What a rule needs beyond the statement, built up as the revision's SQL is read."""

    revision: str
    dialect: str
    lock_timeout: float | None  # the run's; None or 0: waits for ever
    new_tables: set[str] = field(default_factory=set)  # created in this revision: empty
    new_types: set[str] = field(default_factory=set)   # enum types created in it
    # table -> column -> type text (e.g. "varchar(255)"), from every revision before.
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    sets_lock_timeout: bool = False  # the revision sets lock_timeout itself
    # (table, column) a validated CHECK (column IS NOT NULL) covers; constraint -> those.
    validated_not_null: set[tuple[str, str]] = field(default_factory=set)
    not_null_checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    in_transaction: bool = True  # docex-ops runs each tenant's path in one transaction

    def existing(self, table: str | None) -> bool:
        """A table that may hold rows (not created by this revision)."""
        return table is not None and table not in self.new_tables
