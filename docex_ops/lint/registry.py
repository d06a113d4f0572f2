"""Every lint rule: its id, the dialects it applies to, what it catches, the fix.

The README's rules table is this list (tests/test_lint_rules.py keeps them in step)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from docex_ops.lint import (
    rules_breaking,
    rules_constraints,
    rules_index,
    rules_rewrite,
    rules_session,
    rules_sqlite,
)
from docex_ops.lint.findings import Context, Finding, Statement
from docex_ops.lint.rule_names import RULE_IDS

PG = ("postgresql",)
BOTH = ("postgresql", "sqlite")


@dataclass(frozen=True)
class Rule:
    id: str
    dialects: tuple[str, ...]
    check: Callable[[Statement, Context], list[Finding]]
    catches: str


RULES = [
    Rule("table-rewrite", PG, rules_rewrite.table_rewrite,
         "type change that is not binary-coercible, ADD COLUMN with a volatile default, "
         "SET TABLESPACE"),
    Rule("index-not-concurrent", PG, rules_index.index_not_concurrent,
         "CREATE INDEX / ADD PRIMARY KEY / UNIQUE without CONCURRENTLY on an existing table"),
    Rule("not-null-unvalidated", PG, rules_constraints.not_null_unvalidated,
         "SET NOT NULL without a validated CHECK (col IS NOT NULL)"),
    Rule("constraint-not-valid", PG, rules_constraints.constraint_not_valid,
         "ADD FOREIGN KEY / CHECK without NOT VALID"),
    Rule("drop", BOTH, rules_breaking.drop, "DROP TABLE / DROP COLUMN (data loss)"),
    Rule("rename", BOTH, rules_breaking.rename,
         "RENAME of a table or column (breaks the running application)"),
    Rule("enum-add-value", PG, rules_breaking.enum_add_value,
         "ALTER TYPE ... ADD VALUE inside a transaction"),
    Rule("vacuum-full", PG, rules_rewrite.vacuum_full, "VACUUM FULL / CLUSTER"),
    Rule("lock-timeout", PG, rules_session.missing_lock_timeout,
         "a write-blocking lock requested with no lock_timeout"),
    Rule("sqlite-rebuild", ("sqlite",), rules_sqlite.sqlite_rebuild,
         "a SQLite batch-mode table rebuild (per table)"),
]
if tuple(r.id for r in RULES) != RULE_IDS:  # pragma: no cover - a developer's slip
    raise RuntimeError("lint/rule_names.py RULE_IDS and registry.RULES list different rules")


def rules_for(dialect: str) -> list[Rule]:
    return [r for r in RULES if dialect in r.dialects]
