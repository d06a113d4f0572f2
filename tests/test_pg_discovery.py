"""PostgreSQL discovery at fleet size: two set-based catalog reads, the revisions read
on two connections from SPLIT_REVISIONS_FROM schemas on, and the same answer either way."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import pg_admin_connect
from docex_ops.backends import pg_discover
from docex_ops.backends.base import LOCKED, TenantInfo
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.scripts import MigrationScripts

TENANTS = ("a", "b", "c", "d", "e")


@pytest.fixture
def fleet(settings_factory: Callable[..., Settings]) -> Iterator[tuple[Settings, Any]]:
    """Five tenants at head, one stamped back, one locked by another connection, and
    three schemas under the template that are no tenants: empty, foreign, and one whose
    ``alembic_version`` is a view over a function with a side effect."""
    settings = settings_factory("postgresql")
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    for tenant_id in TENANTS:
        manager.provision(tenant_id)
    TenantDatabaseManager.reset()
    first = MigrationScripts().order[0]
    backend = PostgresBackend(settings)
    loc = backend.location
    admin = pg_admin_connect(settings.postgres.database)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'UPDATE "{loc("b")}".alembic_version SET version_num = %s', (first,))
        cur.execute(f'CREATE SCHEMA "{loc("empty")}"')
        cur.execute(f'CREATE SCHEMA "{loc("alien")}"')
        cur.execute(f'CREATE TABLE "{loc("alien")}".orders (id int)')
        cur.execute(f'CREATE SCHEMA "{loc("trap")}"')
        cur.execute(f'CREATE TABLE "{loc("trap")}".sprung (at timestamptz)')
        cur.execute(f'CREATE FUNCTION "{loc("trap")}".spring() RETURNS text LANGUAGE sql AS '
                    f"$$ INSERT INTO \"{loc('trap')}\".sprung VALUES (now()) RETURNING 'x' $$")
        cur.execute(f'CREATE VIEW "{loc("trap")}".alembic_version AS '
                    f'SELECT "{loc("trap")}".spring() AS version_num')
    holder = pg_admin_connect(settings.postgres.database)
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute(f'LOCK TABLE "{loc("d")}".alembic_version IN ACCESS EXCLUSIVE MODE')
    quick = dataclasses.replace(settings, lock_timeout=0.5)
    yield quick, admin
    holder.rollback()
    holder.close()
    admin.close()


def _answer(found: list[TenantInfo]) -> dict[str, tuple[Any, ...]]:
    return {t.tenant_id: (t.location, t.tables, t.revision, t.condition, t.state)
            for t in found}


def _counting_reader() -> tuple[Callable[..., Any], list[int]]:
    """pg_discover.read_revisions, noting which connection each call read on."""
    connections: list[int] = []

    def reader(conn: Any, schemas: list[str], timeout: float) -> Any:
        connections.append(id(conn))
        return pg_discover.read_revisions(conn, schemas, timeout)
    return reader, connections


def test_split_reads_give_the_same_answer_as_one_connection(
        fleet: tuple[Settings, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, admin = fleet
    reader, connections = _counting_reader()
    whole = _answer(PostgresBackend(settings, revision_reader=reader).discover())
    assert len(connections) == 1

    monkeypatch.setattr(pg_discover, "SPLIT_REVISIONS_FROM", 2)
    reader, connections = _counting_reader()
    split = _answer(PostgresBackend(settings, revision_reader=reader).discover())
    assert len(connections) == 2 and len(set(connections)) == 2  # two connections
    assert split == whole

    head = MigrationScripts().head
    assert {t: row[2] for t, row in whole.items() if row[3] is None and row[2]} == {
        "a": head, "b": MigrationScripts().order[0], "c": head, "e": head}
    assert whole["d"][3] == LOCKED
    assert whole["empty"][1:4] == (0, None, None) and whole["empty"][4] == "empty"
    assert whole["alien"][3] == "foreign"
    # A view named alembic_version is never read: reading it would run its code.
    assert whole["trap"][2] is None and whole["trap"][3] == "foreign"
    with admin.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{PostgresBackend(settings).location("trap")}".sprung')
        assert cur.fetchone()[0] == 0
    assert list(whole) == sorted(whole)  # in schema name order, as before


def test_no_second_connection_left_reads_everything_on_one(
        fleet: tuple[Settings, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A role at its connection limit: the second connection is refused, discovery reads
    the rest on the first and gives the whole answer."""
    settings, admin = fleet
    expected = _answer(PostgresBackend(settings).discover())
    role = f"lim_{uuid.uuid4().hex[:8]}"
    backend = PostgresBackend(settings)
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
        for tenant_id in (*TENANTS, "empty", "alien", "trap"):
            cur.execute(f'GRANT USAGE ON SCHEMA "{backend.location(tenant_id)}" TO "{role}"')
        for tenant_id in TENANTS:
            cur.execute(f'GRANT SELECT ON "{backend.location(tenant_id)}".alembic_version '
                        f'TO "{role}"')
    try:
        limited = dataclasses.replace(settings, postgres=dataclasses.replace(
            settings.postgres, user=role))
        monkeypatch.setattr(pg_discover, "SPLIT_REVISIONS_FROM", 2)
        reader, connections = _counting_reader()
        found = _answer(PostgresBackend(limited, revision_reader=reader).discover())
        assert len(connections) == 1
        assert found == expected
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP OWNED BY "{role}"')
            cur.execute(f'DROP ROLE "{role}"')
