"""Rules: statements that lose data or break the application still running on the old
schema (every tenant's app servers run the old code during a rollout)."""

from __future__ import annotations

from typing import Any

from pglast import ast, enums

from docex_ops.lint.batch import TMP_PREFIX, batch_copy
from docex_ops.lint.findings import ERROR, Context, Finding, Statement
from docex_ops.lint.locks import AT
from docex_ops.lint.rules_rewrite import finding

_DROP_INSTEAD = ("stop using it in a release first, back the tenants up, then run the "
                 "upgrade with --force")
_RENAME_INSTEAD = ("add the new name (column + backfill, or a view), move the application, "
                   "drop the old name in a later revision")


def drop(stmt: Statement, ctx: Context) -> list[Finding]:
    node = stmt.node
    if isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TABLE:
        if not ctx.existing(stmt.table) or _rebuilt(stmt.table, ctx):
            return []
        what = f"DROP TABLE {stmt.table}"
    elif isinstance(node, ast.AlterTableStmt) and ctx.existing(stmt.table):
        columns = [c.name for c in node.cmds or () if c.subtype == AT.AT_DropColumn]
        if not columns:
            return []
        what = f"DROP COLUMN {', '.join(columns)}"
    elif (copy := batch_copy(stmt, ctx)) and copy.dropped:
        return [finding(ctx, copy.statement(stmt), "drop", ERROR,
                        f"batch mode rebuilds {copy.table} without "
                        f"{', '.join(copy.dropped)} (DROP COLUMN): the column's data is lost "
                        "in every tenant, and the running application may still read it",
                        _DROP_INSTEAD, scans=True)]
    else:
        return []
    return [finding(ctx, stmt, "drop", ERROR,
                    f"{what} loses its data in every tenant, and the running application "
                    "may still read it", _DROP_INSTEAD)]


def rename(stmt: Statement, ctx: Context) -> list[Finding]:
    node = stmt.node
    copy = batch_copy(stmt, ctx)
    if copy and copy.renamed:
        names = ", ".join(f"{old} -> {new}" for old, new in copy.renamed)
        return [finding(ctx, copy.statement(stmt), "rename", ERROR,
                        f"batch mode rebuilds {copy.table} renaming {names} (RENAME "
                        "COLUMN): the application still running on the old name breaks "
                        "until every instance is deployed", _RENAME_INSTEAD, scans=True)]
    if not isinstance(node, ast.RenameStmt) or not ctx.existing(stmt.table):
        return []
    if str(stmt.table).startswith(TMP_PREFIX):
        return []
    kind: Any = node.renameType
    what = {enums.ObjectType.OBJECT_COLUMN: "column", enums.ObjectType.OBJECT_TABLE: "table"
            }.get(kind, "object")
    return [finding(ctx, stmt, "rename", ERROR,
                    f"renaming a {what} breaks the application still running on the old "
                    "name until every instance is deployed", _RENAME_INSTEAD)]


def enum_add_value(stmt: Statement, ctx: Context) -> list[Finding]:
    node = stmt.node
    if not isinstance(node, ast.AlterEnumStmt) or node.oldVal or not ctx.in_transaction:
        return []
    if node.typeName and node.typeName[-1].sval in ctx.new_types:
        return []  # PostgreSQL lets a type created in the same transaction use it
    return [finding(ctx, stmt, "enum-add-value", ERROR,
                    "ALTER TYPE ... ADD VALUE inside the tenant's transaction: the value "
                    "cannot be used before commit, and before PostgreSQL 12 it fails",
                    "create the type with every value, or add it outside the per-tenant "
                    "transaction (a revision run with autocommit) before code uses it")]


def _rebuilt(table: str | None, ctx: Context) -> bool:
    return f"{TMP_PREFIX}{table}" in ctx.new_tables
