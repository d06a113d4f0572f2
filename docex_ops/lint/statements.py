"""Rendered SQL -> statements, with PostgreSQL's own parser (pglast / libpg_query)."""

from __future__ import annotations

from typing import Any

import pglast
from pglast import ast

from docex_ops.lint.findings import Statement
from docex_ops.lint.locks import lock_of

VERSION_TABLE = "alembic_version"  # Alembic's bookkeeping, never a tenant's data


def parse(sql: str) -> list[Statement]:
    """Every statement of ``sql`` except Alembic's own version bookkeeping.

    Raises ``pglast.parser.ParseError`` on text PostgreSQL would not accept."""
    statements = []
    data = sql.encode("utf-8")  # pglast's locations are byte offsets into the UTF-8 text
    for raw in pglast.parse_sql(sql):
        text = _text(data, raw).strip()
        table = table_of(raw.stmt)
        if table == VERSION_TABLE:
            continue
        statements.append(Statement(text, raw.stmt, table, lock_of(raw.stmt)))
    return statements


def _text(data: bytes, raw: Any) -> str:
    end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(data)
    return data[raw.stmt_location:end].decode("utf-8")


def table_of(node: Any) -> str | None:
    """The table a statement is about (the first, for a DROP of several)."""
    relation = getattr(node, "relation", None)
    if isinstance(relation, ast.RangeVar):
        return relation.relname
    if isinstance(node, ast.DropStmt) and node.objects:
        name = node.objects[0]
        parts = name if isinstance(name, tuple | list) else (name,)
        return str(getattr(parts[-1], "sval", parts[-1]))
    if isinstance(node, ast.VacuumStmt) and node.rels:
        return str(node.rels[0].relation.relname)
    return None


def type_text(type_name: Any) -> str:
    """``varchar(255)``, ``text``, ``numeric(10,2)``: the last name part and its modifiers."""
    name = type_name.names[-1].sval
    mods = [str(getattr(m.val, "ival", "")) for m in type_name.typmods or ()
            if isinstance(m, ast.A_Const) and hasattr(m.val, "ival")]
    return f"{name}({','.join(mods)})" if mods else name
