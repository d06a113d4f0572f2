"""Revisions that cannot be rendered offline, run for real on a throwaway database and
their statements kept, as the issue's "online path's statements captured".

SQLite: batch mode without ``copy_from`` reflects the table it rebuilds, so offline
rendering refuses it; the usual way to write a batch revision. Run on an in-memory
database brought to the previous revision by the same history, it executes the very
statements a tenant's rebuild would (CREATE the copy, INSERT ... SELECT, DROP, RENAME),
which the lint then reads like rendered SQL. PostgreSQL: none (a revision that must
read the database keeps its "unrendered" note).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from docex_ops.backends.registry import KindRegistry
from docex_ops.migrate.scripts import MigrationScripts

# (scripts, previous revision, revision) -> the statements' SQL, or None: not available.
Capture = Callable[[MigrationScripts, "str | None", str], "str | None"]


def sqlite_in_memory(scripts: MigrationScripts, previous: str | None, revision: str) -> str:
    from sqlalchemy import create_engine, event

    from docex_ops.migrate.tenant import run_online

    statements: list[str] = []

    def keep(conn: Any, clause: Any, multiparams: Any, params: Any, options: Any) -> None:
        # Statements given as objects (DDL, inserts, text): reflection's own PRAGMAs go
        # through exec_driver_sql and are not kept (they read, they change nothing).
        statements.append(str(clause.compile(dialect=conn.dialect,
                                             compile_kwargs={"literal_binds": True})))

    engine = create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            if previous is not None:
                run_online(scripts, conn, "upgrade", previous)
            event.listen(conn, "before_execute", keep)
            run_online(scripts, conn, "upgrade", revision)
    finally:
        engine.dispose()
    return "".join(f"{sql.strip()};\n\n" for sql in statements)


def none_online(scripts: MigrationScripts, previous: str | None, revision: str) -> None:
    """No throwaway database to run on: the revision stays unrendered."""


CAPTURES = KindRegistry[Capture]("lint online capture", {
    "postgresql": "docex_ops.lint.capture:none_online",
    "sqlite": "docex_ops.lint.capture:sqlite_in_memory",
})
