"""Rows out of a PostgreSQL archive into a scratch schema, and no SQL of the archive's.

``pg_restore --data-only`` writes a few settings, then per table ``COPY schema.t
(columns) FROM stdin;``, the rows, and ``\\.``. That text comes from the archive,
so none of it is run as written (nor handed to psql, which would also obey
backslash commands such as ``\\!``): each COPY line is only parsed, checked to
name a table the restore expects with exactly that table's columns, and the
rows are sent through a COPY statement of our own into the scratch table.
Anything else between the row blocks refuses the restore, naming the line.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backends.pg_tools import ArchiveToolError, last_lines
from docex_ops.backup.archive import ArchiveRefused

_IDENT = rb'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_COPY_RE = re.compile(rb"COPY (" + _IDENT + rb")\.(" + _IDENT + rb") \((" + _IDENT
                      + rb"(?:, " + _IDENT + rb")*)\) FROM stdin;\n")
_IDENT_RE = re.compile(_IDENT)
# What pg_restore writes before the rows; none of it is run (client_encoding is applied
# through the driver, after its value is checked).
_SETTING_RE = re.compile(rb"SET ([a-z_]+) = ('[A-Za-z0-9_ ,.-]*'|[A-Za-z0-9_]+);\n")
_SETTINGS = frozenset({
    b"statement_timeout", b"lock_timeout", b"idle_in_transaction_session_timeout",
    b"transaction_timeout", b"client_encoding", b"standard_conforming_strings",
    b"check_function_bodies", b"xmloption", b"client_min_messages", b"row_security",
    b"default_tablespace", b"default_table_access_method", b"default_with_oids"})
_SEARCH_PATH = b"SELECT pg_catalog.set_config('search_path', '', false);\n"
# psql meta-commands pg_dump 17.6+/16.10+/15.14+ brackets its output with (never run).
RESTRICT_RE = re.compile(rb"\\(?:un)?restrict [A-Za-z0-9]+\n")
_ENCODING_RE = re.compile(rb"'([A-Za-z0-9_]+)'")
END_OF_COPY = (b"\\.\n", b"\\.")
COPY_CHUNK = 1 << 16


def unquote(name: bytes) -> str:
    text = name.decode()
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


class CopyData:
    """The rows of one COPY block, read from the stream up to its ``\\.``; a file-like
    object for psycopg2's ``copy_expert``. An error is kept, because psycopg2 turns an
    exception raised in ``read`` into a server error of its own."""

    def __init__(self, lines: Iterator[bytes], what: str) -> None:
        self._lines, self._what = lines, what
        self.done = False
        self.error: Exception | None = None

    def read(self, size: int = COPY_CHUNK) -> bytes:
        if self.done:
            return b""
        chunk: list[bytes] = []
        length = 0
        for line in self._lines:
            if line.startswith(b"\\."):
                if line in END_OF_COPY:
                    self.done = True
                    return b"".join(chunk)
                self.error = ArchiveRefused(f"{self._what}: the rows end with {line[:40]!r} "
                                            "instead of \\.; the archive was changed")
                raise self.error
            chunk.append(line)
            length += len(line)
            if length >= max(size, COPY_CHUNK):
                return b"".join(chunk)
        self.error = ArchiveRefused(f"{self._what}: the archive ends inside the rows")
        raise self.error


def copy_block(cursor: Any, sql: str, data: CopyData) -> None:
    """Run one COPY FROM STDIN fed by ``data``; the archive's own error if it had one."""
    try:
        cursor.copy_expert(sql, data, size=COPY_CHUNK)
    except Exception:  # the driver's error; ours, kept in ``data``, says more
        if data.error is not None:
            raise data.error from None
        raise
    if not data.done:  # the server stopped reading early: never happens with valid rows
        raise ArchiveRefused(f"{sql[:80]}: not every row was read")


@contextmanager
def pg_restore_output(tool: str, archive: Path, entries: list[str], env: dict[str, str],
                      *options: str) -> Iterator[IO[bytes]]:
    """``pg_restore -L <entries> -f -`` of ``archive``, as a stream of lines; its exit
    status is checked when the block ends (a failure after the block's own error is not
    reported over it)."""
    with tempfile.TemporaryDirectory(prefix="docex-ops-toc-") as folder:
        listing = Path(folder) / "toc.list"
        listing.write_text("".join(line + "\n" for line in entries))
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([tool, *options, "-L", str(listing), "-f", "-",
                                     str(archive)], env=env, stdout=subprocess.PIPE,
                                    stderr=err)
            assert proc.stdout is not None
            try:
                yield proc.stdout
            except BaseException:
                proc.kill()
                raise
            finally:
                with suppress(OSError):
                    proc.stdout.close()
                proc.wait()
            if proc.returncode != 0:
                err.seek(0)
                raise ArchiveToolError(f"pg_restore of {archive} failed (exit "
                                       f"{proc.returncode}): {last_lines(err.read())}")


def load_rows(cursor: Any, stream: IO[bytes], archive: Path, source: str, scratch: str,
              columns: dict[str, list[str]]) -> set[str]:
    """Load the rows of ``pg_restore --data-only`` output into ``scratch``.

    ``columns``: per expected table, its columns in our DDL; a COPY naming another
    schema, another table, a table twice or other columns refuses the restore.
    Returns the tables loaded.
    """
    loaded: set[str] = set()
    what = f"archive {archive}"
    lines = iter(stream)
    for line in lines:
        if not line.strip() or line.startswith(b"--") or line == _SEARCH_PATH \
                or RESTRICT_RE.fullmatch(line):
            continue
        setting = _SETTING_RE.fullmatch(line)
        if setting and setting[1] in _SETTINGS:
            if setting[1] == b"client_encoding":
                encoding = _ENCODING_RE.fullmatch(setting[2])
                if encoding is None:
                    raise ArchiveRefused(f"{what}: unexpected setting {line[:80]!r}")
                cursor.connection.set_client_encoding(encoding[1].decode())
            continue
        copy = _COPY_RE.fullmatch(line)
        if copy is None:
            raise ArchiveRefused(f"{what}: unexpected SQL among the rows: {line[:120]!r}; "
                                 "refused, the archive was changed")
        schema, table = unquote(copy[1]), unquote(copy[2])
        names = [unquote(m[0]) for m in _IDENT_RE.finditer(copy[3])]
        if schema != source or table not in columns or table in loaded:
            raise ArchiveRefused(f"{what}: rows for {schema}.{table} were not expected "
                                 f"here ({line[:120]!r})")
        if sorted(names) != sorted(columns[table]) or len(set(names)) != len(names):
            raise ArchiveRefused(
                f"{what}: table {table} has columns ({', '.join(names)}) in the archive "
                f"but ({', '.join(sorted(columns[table]))}) at the manifest's revision")
        target = f"{quote_ident(scratch)}.{quote_ident(table)}"
        cols = ", ".join(quote_ident(n) for n in names)
        # FREEZE: the table was made in this transaction, so its rows can be written
        # frozen (no hint-bit rewrite when the digest reads them right after).
        copy_block(cursor, f"COPY {target} ({cols}) FROM STDIN WITH (FREEZE)",
                   CopyData(lines, f"{what}, table {table}"))
        loaded.add(table)
    return loaded
