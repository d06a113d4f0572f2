"""A restore's scratch file on SQLite: docex-ops' DDL, then only the archive's rows.

The archive is checked first (``sqlite_master``, see sqlite_contents) and then
only read: attached read-only through the percent-encoded URI of its path, so
its triggers never fire and its name can never reach another file. The scratch
file gets DocEX's tables from docex-ops' DDL for the manifest's revision; the
rows are copied table by table, then the foreign keys are checked. Extra tables
(``allow_extra``) are created from their own CREATE TABLE/INDEX text, each
checked to be exactly one statement creating that table or index in the scratch
file; with ``trusted_schema`` off they can use only SQLite's innocuous built-ins.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from docex_ops.backends.pg_tools import ArchiveToolError
from docex_ops.backends.sqlite import open_readonly, readonly_uri, split_statements
from docex_ops.backends.sqlite_contents import MASTER_SQL, classify, describe
from docex_ops.backup.archive import ArchiveContents, ArchiveRefused, RestoreSpec


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def inspect_file(spec: RestoreSpec) -> ArchiveContents:
    """Refuse an archive holding views, triggers, virtual tables, or (without
    ``allow_extra``) tables DocEX does not have, before anything is created."""
    try:
        with closing(open_readonly(spec.archive)) as conn:
            rows = conn.execute(MASTER_SQL).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ArchiveToolError(f"archive {spec.archive} is not a readable SQLite database: "
                               f"{exc}") from exc
    found = classify(rows)
    why = f"archive {spec.archive}"
    if found.refused:
        raise ArchiveRefused(f"{why} holds {describe(*found.refused[0])}, which DocEX's "
                             "schema does not have; refused before anything was created")
    if found.extra_tables and not spec.allow_extra:
        raise ArchiveRefused(f"{why} holds table {found.extra_names[0]!r}, which DocEX's "
                             "schema does not have; rerun with --allow-extra-objects to "
                             "restore the tenant's own tables too")
    return ArchiveContents(tuple(sorted(found.docex_tables)), tuple(found.extra_names),
                           tuple(sql for _, sql in found.extra_tables + found.extra_indexes))


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({_q(table)})")]


def build_file(staging: Path, spec: RestoreSpec, contents: ArchiveContents) -> None:
    """Fill the empty scratch file ``staging``; it is synced before this returns."""
    if not staging.is_absolute():  # an absolute path never starts with "file:"
        raise ValueError(f"scratch file {staging} must be an absolute path")
    # uri=True only so ATTACH accepts the archive's read-only URI; the scratch file's own
    # name is a plain absolute path, which SQLite never reads as a URI.
    with closing(sqlite3.connect(str(staging), uri=True, isolation_level=None)) as conn:
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "foreign_keys = OFF",
                       "trusted_schema = OFF"):
            conn.execute(f"PRAGMA {pragma}")  # a fresh file, synced once at the end
        conn.execute("ATTACH DATABASE ? AS archive", (readonly_uri(spec.archive),))
        conn.execute("BEGIN")
        for statement in split_statements(spec.ddl):
            conn.execute(statement)
        # Indexes stay in place: SQLite keeps them up to date faster than it rebuilds them
        # (each CREATE INDEX reads the whole table again).
        for table in contents.docex_tables:
            _copy_rows(conn, spec, table)
        tables = len(contents.extra_tables)  # entries: the extra tables, then their indexes
        for name, sql in zip(contents.extra_tables, contents.entries[:tables], strict=True):
            conn.execute(sql)
            conn.execute(f"INSERT INTO main.{_q(name)} SELECT * FROM archive.{_q(name)}")
        for sql in contents.entries[tables:]:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE archive")
        broken = conn.execute("PRAGMA foreign_key_check").fetchone()
        if broken is not None:
            raise ArchiveRefused(f"archive {spec.archive}: a row of table {broken[0]} "
                                 f"references a missing row of {broken[2]}; refused")
    fd = os.open(staging, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_rows(conn: sqlite3.Connection, spec: RestoreSpec, table: str) -> None:
    ours, theirs = _columns(conn, "main", table), _columns(conn, "archive", table)
    if not ours:
        raise ArchiveRefused(f"archive {spec.archive}: table {table} is not part of revision "
                             f"{spec.revision}; refused")
    if sorted(ours) != sorted(theirs):
        raise ArchiveRefused(f"archive {spec.archive}: table {table} has columns "
                             f"({', '.join(theirs)}) in the archive but ({', '.join(ours)}) "
                             "at the manifest's revision")
    cols = ", ".join(_q(c) for c in ours)
    conn.execute(f"INSERT INTO main.{_q(table)} ({cols}) SELECT {cols} FROM archive.{_q(table)}")
