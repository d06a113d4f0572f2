"""The in-SQLite checksum equals the definition in backends/digest.py, value by value.

The reference below is the definition written out plainly in Python (it is
what the SQLite digest computed before it moved into a registered function);
the PostgreSQL side is held to the same values by test_backup's
test_checksums_identical_across_backends.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from docex_ops.backends.digest import TableDigest
from docex_ops.backends.sqlite import SqliteBackend
from docex_ops.backends.sqlite_digest import digest_database, digest_table, table_columns
from docex_ops.config.settings import Settings


def _ref_datetime(value: Any) -> str:
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    rendered = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        rendered += f".{moment.microsecond:06d}".rstrip("0")
    return rendered


def _ref_bool(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, int) else str(value)


def _ref_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(value)


def _ref_renderer(declared: str) -> Callable[[Any], str]:
    t = declared.upper()
    if "DATETIME" in t or "TIMESTAMP" in t:
        return _ref_datetime
    if "BOOL" in t:
        return _ref_bool
    if t in ("CHAR(32)", "UUID"):
        return _ref_uuid
    return str


def reference_digest(conn: sqlite3.Connection, table: str, where: str = "") -> TableDigest:
    info = sorted((name, decl) for _cid, name, decl, *_ in
                  conn.execute(f'PRAGMA table_info("{table}")'))
    render = [_ref_renderer(decl or "") for _, decl in info]
    cols = ", ".join(f'x."{name}"' for name, _ in info)
    outer, rows = hashlib.sha256(), 0
    for row in conn.execute(f'SELECT {cols} FROM "{table}" x {where} ORDER BY x.id'):
        parts = []
        for value, fn in zip(row, render, strict=True):
            parts.append("-" if value is None else f"{len(fn(value))}:{fn(value)}")
        outer.update(hashlib.md5("".join(parts).encode()).hexdigest().encode())
        rows += 1
    return TableDigest(rows, outer.hexdigest())


ODD_VALUES: list[tuple[Any, Any, Any, Any, Any]] = [
    # (text, when, flag, ref, n) in columns TEXT, DATETIME, BOOLEAN, CHAR(32), INTEGER
    ("plain", "2026-01-01 12:00:00.000000", 1, uuid.UUID(int=7).hex, 42),
    ("ünïcødé ✓", "2026-01-01 12:00:00.250000", 0, "not-a-uuid", -5),
    ("nul\x00inside", "2026-01-01T12:00:00", "yes", None, 1 << 62),
    (None, "2026-01-01 12:00:00+02:00", None, str(uuid.UUID(int=9)), None),
    (1.0 / 3, "0999-01-01 00:00:00.500000", 2, uuid.UUID(int=1).hex, 1e20),
    (b"\x00\xffblob", "2026-02-30 12:00:00.000000", 0.0, "", 0),
    ("", "not a date", 1, "x" * 32, 3.5),
    ("x" * 5000, "2026-01-01 12:00:00.123456789", -1, uuid.UUID(int=3).hex, 7),
    # Near misses of the common formats: impossible dates, upper-case and braced uuids.
    ("é\x00", "2026-01-01 24:00:00", 5, uuid.UUID(int=11).hex.upper(), 0),
    ("0", "2026-01-01 12:00:05", "1", "G" * 32, -(1 << 63)),
    ("'; --", "2026-01-01 12:00:00.100000", 0, uuid.UUID(int=12).hex + " ", 10),
    ("tab\there", "2026-02-31 12:00:00.120000", 1, "{" + str(uuid.UUID(int=5)) + "}", 1),
]


def _odd_table(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute('CREATE TABLE odd (id VARCHAR(36) PRIMARY KEY, "text" TEXT, "when" DATETIME, '
                 "flag BOOLEAN, ref CHAR(32), n INTEGER)")
    # Ids out of insertion order, upper case sorting before lower case (bytewise).
    ids = ["b", "B", "a", "A", "c_1", "c-1", "é", "Z9", "z", "0", "~", "c"]
    conn.executemany("INSERT INTO odd VALUES (?, ?, ?, ?, ?, ?)",
                     [(i, *values) for i, values in zip(ids, ODD_VALUES, strict=True)])
    return conn


def test_odd_values_digest_as_the_definition_says(tmp_path: Path) -> None:
    conn = _odd_table(tmp_path / "odd.db")
    expected = reference_digest(conn, "odd")
    assert expected.rows == len(ODD_VALUES)
    assert digest_table(conn, "odd") == expected
    subset = digest_table(conn, "odd", where="x.n > :low", params={"low": 0})
    assert subset == reference_digest(conn, "odd", "WHERE x.n > 0")
    assert subset.rows == 7 and subset != expected


def test_altered_table_is_not_digested_with_stale_columns(tmp_path: Path) -> None:
    """Columns are cached per CREATE statement: an ALTER must show in the digest."""
    first = _odd_table(tmp_path / "first.db")
    before = digest_table(first, "odd")
    second = _odd_table(tmp_path / "second.db")
    second.execute("ALTER TABLE odd ADD COLUMN extra TIMESTAMP")
    second.execute("UPDATE odd SET extra = '2026-03-01 00:00:00' WHERE id = 'a'")
    assert [c for c, _ in table_columns(second)["odd"]][-1] == "extra"
    after = digest_table(second, "odd")
    assert after == reference_digest(second, "odd")
    assert after != before
    assert digest_table(first, "odd") == before


def test_digest_database_keeps_the_callers_transaction(tmp_path: Path) -> None:
    conn = _odd_table(tmp_path / "odd.db")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO odd (id) VALUES ('new')")
    tables, revision = digest_database(conn)
    assert conn.in_transaction  # not committed or rolled back under the caller
    assert tables == {}  # "odd" is no DocEX table
    assert revision is None
    conn.execute("ROLLBACK")


def test_tenant_ids_match_discover(settings_factory: Callable[..., Settings]) -> None:
    backend = SqliteBackend(settings_factory("sqlite"))
    for tenant_id in ("b", "a_b", "a"):
        backend.create(tenant_id, "CREATE TABLE t (id INTEGER PRIMARY KEY);")
    backend.path("a").write_bytes(b"not a database")  # still a tenant: discover lists it
    assert backend.tenant_ids() == sorted(t.tenant_id for t in backend.discover())
    assert backend.tenant_ids() == ["a", "a_b", "b"]
