"""What the lint knows of the schema as the revisions are read in order: which tables
each revision creates, every column's type (so a type change can be judged), validated
NOT NULL checks, transaction boundaries and a revision's own lock_timeout."""

from __future__ import annotations

from typing import Any

from pglast import ast, enums

from docex_ops.lint.batch import TMP_PREFIX
from docex_ops.lint.findings import Context, Statement
from docex_ops.lint.locks import AT
from docex_ops.lint.statements import type_text


def learn(stmt: Statement, ctx: Context) -> None:
    """Update ``ctx`` after the rules have seen ``stmt``."""
    node: Any = stmt.node
    table = stmt.table
    if isinstance(node, ast.CreateStmt) and table:
        ctx.new_tables.add(table)
        ctx.columns[table] = {str(e.colname): type_text(e.typeName) for e in node.tableElts or ()
                              if isinstance(e, ast.ColumnDef)}
    elif isinstance(node, ast.AlterTableStmt) and table:
        _alter(node, ctx.columns.setdefault(table, {}))
    elif isinstance(node, ast.RenameStmt) and table:
        _rename(node, table, ctx)
    elif isinstance(node, ast.CreateEnumStmt) and node.typeName:
        ctx.new_types.add(str(node.typeName[-1].sval))
    elif isinstance(node, ast.TransactionStmt):
        ctx.in_transaction = node.kind in (enums.TransactionStmtKind.TRANS_STMT_BEGIN,
                                           enums.TransactionStmtKind.TRANS_STMT_START)
    elif isinstance(node, ast.VariableSetStmt) and node.name == "lock_timeout":
        ctx.sets_lock_timeout = not _zero(node)


def _alter(node: Any, columns: dict[str, str]) -> None:
    for cmd in node.cmds or ():
        if cmd.subtype in (AT.AT_AddColumn, AT.AT_AlterColumnType) and cmd.def_ is not None:
            name = cmd.name or cmd.def_.colname
            columns[name] = type_text(cmd.def_.typeName)
        elif cmd.subtype == AT.AT_DropColumn:
            columns.pop(cmd.name, None)


def _rename(node: Any, table: str, ctx: Context) -> None:
    if node.renameType == enums.ObjectType.OBJECT_COLUMN:
        columns = ctx.columns.setdefault(table, {})
        columns[node.newname] = columns.pop(node.subname, "")
    elif node.renameType == enums.ObjectType.OBJECT_TABLE:
        ctx.columns[node.newname] = ctx.columns.pop(table, {})
        if table.startswith(TMP_PREFIX):  # SQLite's rebuilt copy: the table lives on
            ctx.new_tables.discard(table)


def _zero(node: Any) -> bool:
    values = [getattr(a.val, "ival", getattr(a.val, "sval", None)) for a in node.args or ()]
    return values in ([0], ["0"], [])
