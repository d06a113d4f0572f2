"""Rules: constraints validated under a lock that stops writes (or reads)."""

from __future__ import annotations

from typing import Any

from pglast import ast, enums

from docex_ops.lint.findings import ERROR, Context, Finding, Statement
from docex_ops.lint.locks import AT
from docex_ops.lint.rules_rewrite import finding

_VALIDATED = {enums.ConstrType.CONSTR_FOREIGN: "FOREIGN KEY",
              enums.ConstrType.CONSTR_CHECK: "CHECK"}


def constraint_not_valid(stmt: Statement, ctx: Context) -> list[Finding]:
    if not isinstance(stmt.node, ast.AlterTableStmt) or not ctx.existing(stmt.table):
        return []
    kinds = [_VALIDATED[c.def_.contype] for c in stmt.node.cmds or ()
             if c.subtype == AT.AT_AddConstraint and isinstance(c.def_, ast.Constraint)
             and c.def_.contype in _VALIDATED and not c.def_.skip_validation]
    if not kinds:
        return []
    return [finding(ctx, stmt, "constraint-not-valid", ERROR,
                    f"ADD {kinds[0]} without NOT VALID checks every row while holding "
                    f"{stmt.lock}", "ADD ... NOT VALID, then VALIDATE CONSTRAINT (SHARE "
                    "UPDATE EXCLUSIVE: reads and writes go on) in a later revision",
                    scans=True)]


def not_null_unvalidated(stmt: Statement, ctx: Context) -> list[Finding]:
    if not isinstance(stmt.node, ast.AlterTableStmt) or not ctx.existing(stmt.table):
        return []
    table = str(stmt.table)
    found = []
    for cmd in stmt.node.cmds or ():
        _track_checks(cmd, table, ctx)
        if cmd.subtype == AT.AT_SetNotNull and (table, cmd.name) not in ctx.validated_not_null:
            found.append(finding(
                ctx, stmt, "not-null-unvalidated", ERROR,
                f"SET NOT NULL on {cmd.name} scans every row under ACCESS EXCLUSIVE",
                f"ADD CONSTRAINT ... CHECK ({cmd.name} IS NOT NULL) NOT VALID, VALIDATE it, "
                "then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check",
                scans=True))
    return found


def _track_checks(cmd: Any, table: str, ctx: Context) -> None:
    """Remember CHECK (col IS NOT NULL) constraints and which were validated."""
    if cmd.subtype == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
        column = _not_null_column(cmd.def_.raw_expr)
        if cmd.def_.contype == enums.ConstrType.CONSTR_CHECK and column:
            if cmd.def_.skip_validation:
                ctx.not_null_checks[str(cmd.def_.conname)] = (table, column)
            else:
                ctx.validated_not_null.add((table, column))
    elif cmd.subtype == AT.AT_ValidateConstraint and cmd.name in ctx.not_null_checks:
        ctx.validated_not_null.add(ctx.not_null_checks[cmd.name])


def _not_null_column(expr: Any) -> str | None:
    if (isinstance(expr, ast.NullTest) and expr.nulltesttype == enums.NullTestType.IS_NOT_NULL
            and isinstance(expr.arg, ast.ColumnRef)):
        return str(expr.arg.fields[-1].sval) if expr.arg.fields else None
    return None
