"""PostgreSQL's lock levels per command and ALTER TABLE sub-command, as documented in
"Explicit Locking" (13.3.1) and the ALTER TABLE page; what blocks what follows from it."""

from __future__ import annotations

from typing import Any

from pglast import ast, enums

ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"    # blocks reads and writes
EXCLUSIVE = "EXCLUSIVE"                  # blocks writes (REFRESH ... CONCURRENTLY)
SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"  # blocks writes (ADD FOREIGN KEY, triggers)
SHARE = "SHARE"                          # blocks writes (CREATE INDEX)
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"  # blocks neither (VALIDATE, CONCURRENTLY)
ROW_EXCLUSIVE = "ROW EXCLUSIVE"          # INSERT / UPDATE / DELETE

# Levels that stop the application: ACCESS EXCLUSIVE stops reads too.
BLOCKS_WRITES = {ACCESS_EXCLUSIVE, EXCLUSIVE, SHARE_ROW_EXCLUSIVE, SHARE}
BLOCKS_READS = {ACCESS_EXCLUSIVE}

AT = enums.AlterTableType
# ALTER TABLE sub-commands that take less than ACCESS EXCLUSIVE (the rest take it).
_SUBCOMMAND_LOCKS = {
    AT.AT_ValidateConstraint: SHARE_UPDATE_EXCLUSIVE,
    AT.AT_SetStatistics: SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ClusterOn: SHARE_UPDATE_EXCLUSIVE,
    AT.AT_DropCluster: SHARE_UPDATE_EXCLUSIVE,
    AT.AT_SetRelOptions: SHARE_UPDATE_EXCLUSIVE,
    AT.AT_ResetRelOptions: SHARE_UPDATE_EXCLUSIVE,
    AT.AT_EnableTrig: SHARE_ROW_EXCLUSIVE,
    AT.AT_DisableTrig: SHARE_ROW_EXCLUSIVE,
}

_STRENGTH = [ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE,
             ACCESS_EXCLUSIVE]


def strongest(levels: list[str]) -> str | None:
    return max(levels, key=_STRENGTH.index) if levels else None


def subcommand_lock(cmd: Any) -> str:
    if cmd.subtype == AT.AT_AddConstraint and _is_foreign_key(cmd.def_):
        return SHARE_ROW_EXCLUSIVE  # on both tables
    return _SUBCOMMAND_LOCKS.get(cmd.subtype, ACCESS_EXCLUSIVE)


def _is_foreign_key(node: Any) -> bool:
    return isinstance(node, ast.Constraint) and node.contype == enums.ConstrType.CONSTR_FOREIGN


def lock_of(node: Any) -> str | None:
    """The lock a statement takes on the table it names (None: no table lock)."""
    if isinstance(node, ast.AlterTableStmt):
        return strongest([subcommand_lock(c) for c in node.cmds or ()])
    if isinstance(node, ast.IndexStmt):
        return SHARE_UPDATE_EXCLUSIVE if node.concurrent else SHARE
    if isinstance(node, ast.RenameStmt | ast.DropStmt | ast.ClusterStmt | ast.TruncateStmt):
        return ACCESS_EXCLUSIVE
    if isinstance(node, ast.VacuumStmt):
        return ACCESS_EXCLUSIVE if is_vacuum_full(node) else SHARE_UPDATE_EXCLUSIVE
    if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
        return ROW_EXCLUSIVE
    return None


def is_vacuum_full(node: ast.VacuumStmt) -> bool:
    return bool(node.is_vacuumcmd) and any(o.defname == "full" for o in node.options or ())
