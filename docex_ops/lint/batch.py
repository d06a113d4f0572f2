"""SQLite batch mode, read from the statements it renders: a table is rebuilt as a copy
(``CREATE TABLE _alembic_tmp_x``), every row is copied across
(``INSERT INTO _alembic_tmp_x (cols) SELECT x.cols FROM x``), the old table is dropped and
the copy renamed. The copy's column list against the old table's columns is what the
batch did to them: a column the copy does not select is dropped, one selected under
another name is renamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast

from docex_ops.lint.findings import Context, Statement

TMP_PREFIX = "_alembic_tmp_"  # batch mode's copy: its CREATE/DROP/RENAME are the rebuild


@dataclass(frozen=True)
class BatchCopy:
    table: str                        # the table rebuilt (not its temporary copy)
    dropped: tuple[str, ...]          # the old table's columns the copy leaves out
    renamed: tuple[tuple[str, str], ...]  # (old name, new name)

    def statement(self, stmt: Statement) -> Statement:
        """``stmt`` as a finding shows it: about the rebuilt table, under SQLite's lock."""
        return Statement(stmt.sql, stmt.node, self.table, "database write lock")


def rebuilt_table(table: str | None) -> str | None:
    """The table ``table`` is batch mode's copy of, or None."""
    if table is None or not table.startswith(TMP_PREFIX):
        return None
    return table[len(TMP_PREFIX):]


def batch_copy(stmt: Statement, ctx: Context) -> BatchCopy | None:
    """What a batch rebuild's row copy does to the columns; None for any other statement.

    The old table's columns come from the revisions read before (``ctx.columns``); for a
    table the lint has not seen created, a drop cannot be told and only renames are."""
    node: Any = stmt.node
    table = rebuilt_table(stmt.table)
    if not isinstance(node, ast.InsertStmt) or table is None or node.selectStmt is None:
        return None
    select = node.selectStmt
    if not isinstance(select, ast.SelectStmt) or not select.targetList or not node.cols:
        return None
    pairs = [(_source_column(target.val), str(column.name))
             for column, target in zip(node.cols, select.targetList, strict=False)]
    sources = {source for source, _ in pairs if source}
    old = ctx.columns.get(table, {})
    return BatchCopy(table, tuple(c for c in old if c not in sources),
                     tuple((s, t) for s, t in pairs if s and s != t))


def _source_column(expr: Any) -> str | None:
    """The old column a copied value is read from: ``x.c``, or ``CAST(x.c AS ...)`` when
    batch mode changes the type; None for a value that is not a column (a default)."""
    while isinstance(expr, ast.TypeCast):
        expr = expr.arg
    if isinstance(expr, ast.ColumnRef) and expr.fields:
        last = expr.fields[-1]
        return str(last.sval) if isinstance(last, ast.String) else None
    return None
