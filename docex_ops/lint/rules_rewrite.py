"""Rules: statements that rewrite a table (or hold it ACCESS EXCLUSIVE for a full copy)."""

from __future__ import annotations

from typing import Any

from pglast import ast, enums

from docex_ops.lint.findings import ERROR, Context, Finding, Statement
from docex_ops.lint.locks import AT, is_vacuum_full
from docex_ops.lint.statements import type_text

# Volatile functions PostgreSQL must call per row, so ADD COLUMN ... DEFAULT rewrites.
VOLATILE = {"random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v4",
            "clock_timestamp", "timeofday", "nextval", "txid_current", "statement_timestamp"}
SERIAL = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}
_STRINGS = {"varchar", "text"}
REWRITING_SUBCOMMANDS = {AT.AT_SetTableSpace: "SET TABLESPACE copies the table",
                         AT.AT_SetLogged: "SET LOGGED rewrites the table",
                         AT.AT_SetUnLogged: "SET UNLOGGED rewrites the table",
                         AT.AT_SetAccessMethod: "SET ACCESS METHOD rewrites the table"}


def table_rewrite(stmt: Statement, ctx: Context) -> list[Finding]:
    if not isinstance(stmt.node, ast.AlterTableStmt) or not ctx.existing(stmt.table):
        return []
    reasons = [why for cmd in stmt.node.cmds or () if (why := _rewrites(cmd, stmt, ctx))]
    return [finding(ctx, stmt, "table-rewrite", ERROR,
                    f"{'; '.join(reasons)}: the table is copied row by row under "
                    "ACCESS EXCLUSIVE (no reads, no writes until it is done)",
                    "add a new column, backfill it in batches, then swap it in; or a "
                    "binary-coercible type (varchar(n) -> text / larger varchar), a "
                    "non-volatile default", scans=True)] if reasons else []


def _rewrites(cmd: Any, stmt: Statement, ctx: Context) -> str | None:
    if cmd.subtype in REWRITING_SUBCOMMANDS:
        return REWRITING_SUBCOMMANDS[cmd.subtype]
    if cmd.subtype == AT.AT_AlterColumnType:
        new = type_text(cmd.def_.typeName)
        old = ctx.columns.get(str(stmt.table), {}).get(cmd.name)
        if cmd.def_.raw_default is not None:
            return f"TYPE {new} USING ... recomputes every row of {cmd.name}"
        if old is None or not binary_coercible(old, new):
            return f"{cmd.name} {old or '(type unknown)'} -> {new} is not binary-coercible"
    if cmd.subtype == AT.AT_AddColumn:
        return _rewriting_column(cmd.def_)
    return None


def _rewriting_column(column: Any) -> str | None:
    if type_text(column.typeName) in SERIAL:
        return f"ADD COLUMN {column.colname} {type_text(column.typeName)} fills every row"
    for constraint in column.constraints or ():
        if constraint.contype == enums.ConstrType.CONSTR_GENERATED:
            return f"ADD COLUMN {column.colname} GENERATED ... STORED computes every row"
        if constraint.contype == enums.ConstrType.CONSTR_IDENTITY:
            return f"ADD COLUMN {column.colname} GENERATED AS IDENTITY fills every row"
        if (constraint.contype == enums.ConstrType.CONSTR_DEFAULT
                and _volatile(constraint.raw_expr)):
            return f"ADD COLUMN {column.colname} with a volatile default fills every row"
    return None


def _volatile(expr: Any) -> bool:
    if isinstance(expr, ast.FuncCall) and expr.funcname and expr.funcname[-1].sval in VOLATILE:
        return True
    # Through casts, operators and function arguments (``gen_random_uuid()::text``).
    children = [getattr(expr, name, None) for name in ("arg", "lexpr", "rexpr")]
    children += list(getattr(expr, "args", None) or ())
    return isinstance(expr, ast.Node) and any(_volatile(c) for c in children if c is not None)


def binary_coercible(old: str, new: str) -> bool:
    """PostgreSQL changes the type without touching a row: varchar(n) -> text, to an
    unlimited or larger varchar, text -> varchar, numeric to a larger precision."""
    old_name, old_len = _split(old)
    new_name, new_len = _split(new)
    if old == new:
        return True
    if old_name in _STRINGS and new_name in _STRINGS:
        return new_len is None or (old_name == "varchar" and old_len is not None
                                   and new_len >= old_len)
    return False


def _split(type_text_: str) -> tuple[str, int | None]:
    name, _, rest = type_text_.partition("(")
    name = {"character varying": "varchar"}.get(name, name)
    return name, int(rest.split(",")[0].rstrip(")")) if rest else None


def vacuum_full(stmt: Statement, ctx: Context) -> list[Finding]:
    node = stmt.node
    if not (isinstance(node, ast.ClusterStmt)
            or (isinstance(node, ast.VacuumStmt) and is_vacuum_full(node))):
        return []
    return [finding(ctx, stmt, "vacuum-full", ERROR,
                    "VACUUM FULL / CLUSTER copies the whole table under ACCESS EXCLUSIVE",
                    "pg_repack (online), or plain VACUUM outside the migration",
                    scans=True)]


def finding(ctx: Context, stmt: Statement, rule: str, severity: str, why: str,
            instead: str, scans: bool = False) -> Finding:
    """A finding about ``stmt``; ``scans``: the lock is held while the whole table is
    read or copied (so its size says for how long)."""
    return Finding(rule, severity, ctx.revision, ctx.dialect, stmt.sql, why, instead,
                   stmt.table, stmt.lock, scans)
