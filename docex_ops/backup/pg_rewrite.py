"""Rename the schema in the SQL that ``pg_restore -f -`` writes, without touching data.

pg_restore always recreates the schema a table was dumped from. To restore
tenant A as tenant B (or into a scratch schema beside a live A), every
reference to A's schema in the DDL is rewritten: qualified names (``a.t``),
and ``SCHEMA a`` (CREATE/ALTER/COMMENT/GRANT). Rows between ``COPY ... FROM
stdin;`` and ``\\.`` pass through byte for byte, so a value that happens to
contain the schema name is never altered. Any reference left over outside
comments and data makes the rewrite fail rather than run DDL against A.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_END_OF_COPY = b"\\.\n"


class SchemaRewriteError(RuntimeError):
    """The SQL still names the old schema after rewriting: refuse to run it."""


class SchemaRewriter:
    """Streams pg_restore's SQL, renaming ``old`` to ``new`` outside COPY data."""

    def __init__(self, old: str, new: str) -> None:
        o, n = re.escape(old.encode()), new.encode()
        self._rules = [
            (re.compile(rb'(?<![\w$".])' + o + rb"(?=\.)"), n),
            (re.compile(rb'"' + o + rb'"(?=\.)'), b'"' + n + b'"'),
            (re.compile(rb"\bSCHEMA " + o + rb"(?![\w$])"), b"SCHEMA " + n),
            (re.compile(rb'\bSCHEMA "' + o + rb'"'), b'SCHEMA "' + n + b'"'),
        ]
        self._leftover = re.compile(rb"(?<![\w$])" + o + rb"(?![\w$])")
        self._old = old
        self._in_copy = False

    def rewrite(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        for line in lines:
            yield self.rewrite_line(line)

    def rewrite_line(self, line: bytes) -> bytes:
        if self._in_copy:
            if line == _END_OF_COPY or line == b"\\.":
                self._in_copy = False
            return line
        if line.startswith(b"--"):
            return line
        line = self.rename(line)
        if line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            self._in_copy = True
        return line

    def rename(self, line: bytes) -> bytes:
        """One line of SQL (never COPY data) with the schema renamed; refuses leftovers."""
        for pattern, replacement in self._rules:
            line = pattern.sub(replacement, line)
        if self._leftover.search(line):
            raise SchemaRewriteError(
                f"cannot safely rename schema {self._old!r} in restore SQL line "
                f"{line[:120]!r}; restore under the original id into an empty database instead")
        return line
