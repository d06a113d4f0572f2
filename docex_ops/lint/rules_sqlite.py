"""SQLite: batch mode rebuilds a table (create a copy, copy every row, drop, rename),
holding the database's write lock for the whole copy."""

from __future__ import annotations

from pglast import ast

from docex_ops.lint.batch import rebuilt_table
from docex_ops.lint.findings import WARNING, Context, Finding, Statement
from docex_ops.lint.rules_rewrite import finding


def sqlite_rebuild(stmt: Statement, ctx: Context) -> list[Finding]:
    table = rebuilt_table(stmt.table)
    if not isinstance(stmt.node, ast.CreateStmt) or table is None:
        return []
    rebuilt = Statement(stmt.sql, stmt.node, table, "database write lock")
    return [finding(ctx, rebuilt, "sqlite-rebuild", WARNING,
                    f"batch mode rebuilds {table}: every row is copied while the tenant's "
                    "database is locked for writes", "fine for small tenants; schedule "
                    "large ones in a quiet window (--order size, --waves)", scans=True)]
