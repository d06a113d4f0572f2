"""Rule: an index built without CONCURRENTLY on a table that may hold rows."""

from __future__ import annotations

from pglast import ast, enums

from docex_ops.lint.findings import ERROR, Context, Finding, Statement
from docex_ops.lint.locks import AT
from docex_ops.lint.rules_rewrite import finding

_INDEXED = {enums.ConstrType.CONSTR_PRIMARY, enums.ConstrType.CONSTR_UNIQUE,
            enums.ConstrType.CONSTR_EXCLUSION}


def index_not_concurrent(stmt: Statement, ctx: Context) -> list[Finding]:
    if not ctx.existing(stmt.table):
        return []
    node = stmt.node
    if isinstance(node, ast.IndexStmt) and not node.concurrent:
        why = "CREATE INDEX without CONCURRENTLY holds SHARE: no writes while it builds"
    elif isinstance(node, ast.AlterTableStmt) and any(
            c.subtype == AT.AT_AddConstraint and isinstance(c.def_, ast.Constraint)
            and c.def_.contype in _INDEXED and not c.def_.indexname for c in node.cmds or ()):
        why = "ADD PRIMARY KEY / UNIQUE builds its index under ACCESS EXCLUSIVE"
    else:
        return []
    return [finding(ctx, stmt, "index-not-concurrent", ERROR, why,
                    "CREATE INDEX CONCURRENTLY in its own revision outside the transaction "
                    "(op.get_context().autocommit_block()), then ADD CONSTRAINT ... USING "
                    "INDEX", scans=True)]
