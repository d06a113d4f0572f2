"""Scratch objects are held by the operation that made them, and only then."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from docex_ops.backends import scratch
from docex_ops.tenancy import tenant_id_pattern


def test_scratch_names_never_match_a_tenant_template() -> None:
    for template in ("tenant_{tenant_id}", "{tenant_id}", "_{tenant_id}"):
        pattern = tenant_id_pattern(template)
        assert not pattern.fullmatch(scratch.new_schema_name("restore"))
    assert not tenant_id_pattern("{tenant_id}.db").fullmatch(scratch.new_file_name("x", ".db"))


def test_a_held_file_cannot_be_claimed_until_released(tmp_path: Path) -> None:
    with scratch.hold_new_file(tmp_path, "restore", ".db") as path:
        assert path.exists() and scratch.is_scratch_file(path.name)
        with scratch.claimed(path) as free:
            assert not free
    assert not path.exists()  # removed by its holder
    orphan = tmp_path / scratch.new_file_name("partial", ".partial")
    orphan.write_bytes(b"x")  # as a killed process leaves it: nobody holds it
    with scratch.claimed(orphan) as free:
        assert free


def test_a_held_folder_cannot_be_claimed(tmp_path: Path) -> None:
    with scratch.hold_new_folder(tmp_path, "check") as folder:
        (folder / "copy.db").write_bytes(b"x")
        with scratch.claimed(folder) as free:
            assert not free
    assert not folder.exists()


def test_a_held_schema_name_cannot_be_claimed(pg_database: str) -> None:
    from conftest import PG_HOST, PG_PORT, PG_USER

    engine = create_engine(f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{pg_database}")
    try:
        with scratch.hold_new_schema(engine, "restore") as name, engine.connect() as other:
            assert scratch.is_scratch_schema(name)
            assert not scratch.try_claim_schema(other, name)
        with engine.connect() as other:
            assert scratch.try_claim_schema(other, name)
            scratch.release_schema(other, name)
    finally:
        engine.dispose()


def test_a_percent_encoded_name_never_opens_another_file(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from docex_ops.backends.sqlite import open_readonly

    (tmp_path / "b").mkdir()
    live = sqlite3.connect(tmp_path / "b" / "docex.db")
    live.execute("CREATE TABLE secret (x)")
    live.commit()
    live.close()
    with pytest.raises(sqlite3.OperationalError):  # no file of that literal name
        open_readonly(tmp_path / "b%2Fdocex.db").execute("SELECT 1 FROM sqlite_master")
