"""SQLite checksums rendered in SQL equal the Python reference, value by value and per table.

The reference is the definition in backends/archive.py as the Python renderers
apply it (the way SQLite checksums were computed before the SQL path): any
difference would make backups and splits report false mismatches, or break
the PostgreSQL == SQLite equality that test_backup.py checks.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from docex_ops.backends.sqlite_digest import (
    BOOLEAN,
    DATETIME,
    TEXT,
    UUID,
    digest_table,
    encode_value,
    register_functions,
    value_kind,
    value_sql,
)

DATETIMES: list[Any] = [
    "2026-01-01 12:00:00.500000", "2026-01-01 12:00:00.000000", "2026-01-01 12:00:10.000000",
    "2026-01-01 12:00:00.000001", "2026-01-01 12:00:00.123450", "2026-01-01 23:59:59.999999",
    "2026-01-01 12:00:00", "2026-01-01", "2024-02-29", "2026-02-29", "2026-02-31 12:00:00",
    "2026-04-31 00:00:00.100000", "0000-01-01 00:00:00", "0001-01-01 00:00:00",
    "0999-12-31 10:00:00", "9999-12-31",
    "2026-13-01 12:00:00", "2026-00-10", "2026-01-00", "2026-01-01 24:00:00",
    "2026-01-01 12:60:00", "2026-01-01T12:00:00", "2026-01-01 12:00:00.5",
    "2026-01-01 12:00:00+02:00", "2026-01-01 12:00:00.500000+00:00", "20260101", "2026-W01-1",
    "not a date", "", 20260101, 1.5, b"2026-01-01", "2026-01-01 12:00:00.50000\x00",
    "２０２６-01-01",
]
BOOLEANS: list[Any] = [0, 1, 2, -1, "true", "1", "", 1.0, 0.0, b"\x01"]
TEXTS: list[Any] = [
    "", "plain", "ünïcødé ✓", "emoji 😀", "with\x00nul", "\x00", "{\"a\": [1, 2]}", 0, -5,
    2**62, -(2**63), 1.5, 0.1, 1e20, 1e-7, float("inf"), b"bytes", b"", "x" * 1000,
    "line\nbreak", "'quote'", "2026-01-01 12:00:00.500000",
]
UUIDS: list[Any] = ["0f1e2d3c4b5a69788796a5b4c3d2e1f0", "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
                    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "not-a-uuid", 7]
DECLARED = {DATETIME: "DATETIME", BOOLEAN: "BOOLEAN", TEXT: "TEXT", UUID: "CHAR(32)"}


def _values(kind: str) -> list[Any]:
    return {DATETIME: DATETIMES, BOOLEAN: BOOLEANS, TEXT: TEXTS, UUID: UUIDS}[kind] + [None]


def _random_datetimes(count: int) -> list[str]:
    """Near-canonical timestamps: digits and separators shuffled into the three forms."""
    rng = random.Random(20260101)
    found = []
    for _ in range(count):
        year = rng.choice(["0000", "0001", "1999", "2024", "2026", "9999"])
        month, day = f"{rng.randint(0, 13):02d}", f"{rng.randint(0, 32):02d}"
        clock = f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}"
        fraction = rng.choice(["000000", "500000", "000001", "120000", "999999",
                               f"{rng.randint(0, 999999):06d}"])
        found.append(rng.choice([f"{year}-{month}-{day} {clock}.{fraction}",
                                 f"{year}-{month}-{day} {clock}", f"{year}-{month}-{day}"]))
    return found


def _sql_encoding(conn: sqlite3.Connection, kind: str, value: Any) -> str:
    conn.execute("DELETE FROM v")
    conn.execute("INSERT INTO v (val) VALUES (?)", (value,))
    return str(conn.execute(f"SELECT {value_sql('val', kind)} FROM v x").fetchone()[0])


@pytest.mark.parametrize("kind", [DATETIME, BOOLEAN, TEXT, UUID])
def test_sql_encoding_equals_python_reference(kind: str) -> None:
    # Declared without a type: the value is stored exactly as given (no affinity).
    with closing(sqlite3.connect(":memory:")) as conn:
        register_functions(conn)
        conn.execute("CREATE TABLE v (val)")
        values = _values(kind) + (_random_datetimes(3000) if kind == DATETIME else [])
        differ = [(v, _sql_encoding(conn, kind, v), encode_value(kind, v)) for v in values
                  if _sql_encoding(conn, kind, v) != encode_value(kind, v)]
    assert differ == []


def test_stored_forms_are_rendered_by_sql_not_the_fallback() -> None:
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.create_function("docex_encode", 2, lambda kind, value: "FALLBACK")
        conn.execute("CREATE TABLE v (val)")
        assert _sql_encoding(conn, DATETIME, "2026-01-01 12:00:00.500000") == \
            "21:2026-01-01 12:00:00.5"
        assert _sql_encoding(conn, DATETIME, "2026-01-01") == "19:2026-01-01 00:00:00"
        assert _sql_encoding(conn, BOOLEAN, 1) == "4:true"
        assert _sql_encoding(conn, TEXT, "ünï") == "3:ünï"
        assert _sql_encoding(conn, TEXT, 42) == "2:42"
        assert _sql_encoding(conn, DATETIME, "2026-02-31") == "FALLBACK"
        assert _sql_encoding(conn, TEXT, 1.5) == "FALLBACK"


def _reference_digest(conn: sqlite3.Connection, table: str) -> tuple[int, str]:
    info = sorted((name, decl) for _cid, name, decl, *_ in
                  conn.execute(f'PRAGMA table_info("{table}")'))
    cols = ", ".join(f'"{n}"' for n, _ in info)
    outer = hashlib.sha256()
    rows = 0
    for row in conn.execute(f'SELECT {cols} FROM "{table}" ORDER BY id COLLATE BINARY'):
        text = "".join(encode_value(value_kind(decl or ""), value)
                       for value, (_, decl) in zip(row, info, strict=True))
        outer.update(hashlib.md5(text.encode()).hexdigest().encode())
        rows += 1
    return rows, outer.hexdigest()


def test_table_digest_equals_reference(tmp_path: Path) -> None:
    rng = random.Random(7)
    pools = {"DATETIME": DATETIMES + _random_datetimes(200), "BOOLEAN": BOOLEANS, "TEXT": TEXTS,
             "JSON": TEXTS, "INTEGER": [0, 1, -7, 10**12, None], "CHAR(32)": UUIDS}
    with closing(sqlite3.connect(tmp_path / "t.db")) as conn:
        # Column names out of order: the digest sorts them by name.
        conn.execute('CREATE TABLE t (id VARCHAR(36) PRIMARY KEY, "zeta" DATETIME, '
                     '"Alpha" BOOLEAN, "beta" TEXT, "b_json" JSON, "count" INTEGER, '
                     '"ref" CHAR(32))')
        for i in range(500):
            conn.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", (
                f"id_{rng.randint(0, 10**9)}_{i}", *[rng.choice(pools[k] + [None]) for k in (
                    "DATETIME", "BOOLEAN", "TEXT", "JSON", "INTEGER", "CHAR(32)")]))
        digest = digest_table(conn, "t")
        assert (digest.rows, digest.checksum) == _reference_digest(conn, "t")
        subset = digest_table(conn, "t", where="x.id < :top", params={"top": "id_5"})
        conn.execute("DELETE FROM t WHERE id >= 'id_5'")
        assert (subset.rows, subset.checksum) == _reference_digest(conn, "t")
        assert 0 < subset.rows < digest.rows
