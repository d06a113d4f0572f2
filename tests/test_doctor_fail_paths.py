"""`docex-ops doctor`'s FAIL paths of the privilege and replication checks, each planted
for real on PostgreSQL: a config user without CREATE on the database and without access
to the tenants' schemas; an inactive replication slot holding WAL on a fleet server."""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pg_admin_connect, server_connect
from docs_support import write_config
from migration_helpers import cli, cli_json

from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager


@pytest.fixture(autouse=True)
def own_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The leftovers check searches the temp folder: this test's own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield


def _rows(config: Path, check: str) -> tuple[int, list[dict[str, Any]]]:
    code, data = cli_json(config, "doctor")
    return code, [r for r in data["checks"] if r["check"] == check]


def test_a_user_without_create_or_read_access_fails_privileges(
        settings_factory: Any, pg_database: str, tmp_path: Path) -> None:
    settings: Settings = settings_factory("postgresql")
    TenantDatabaseManager.reset()
    owner = TenantDatabaseManager(settings)  # the tenants made by the usual superuser
    for tenant_id in ("p1", "p2"):
        owner.provision(tenant_id)
    schemas = sorted(settings.postgres.schema_template.format(tenant_id=t) for t in ("p1", "p2"))
    TenantDatabaseManager.reset()
    role = f"doctor_{uuid.uuid4().hex[:8]}"  # roles are cluster-wide: this test's own
    admin = pg_admin_connect(pg_database)
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')  # no CREATE on the database, no USAGE
    limited = dataclasses.replace(settings, postgres=dataclasses.replace(settings.postgres,
                                                                         user=role))
    config = write_config(limited, tmp_path / "limited.yaml")
    try:
        code, rows = _rows(config, "privileges")
        assert code == 1, rows
        assert [r["status"] for r in rows] == ["FAIL"], rows
        assert (f"{role} lacks CREATE on database {pg_database}" in rows[0]["detail"]
                and f"GRANT CREATE ON DATABASE {pg_database} TO {role};" in rows[0]["detail"])
        _, (readable,) = _rows(config, "pg_dump_readable")
        assert readable["status"] == "FAIL", readable
        assert "cannot read 2 tenant schema(s)" in readable["detail"]
        assert all(s in readable["detail"] for s in schemas), readable
        assert f"GRANT USAGE ON SCHEMA {schemas[0]} TO {role}" in readable["detail"]
        code, out = cli(config, "doctor")  # the table says the same, in one line per row
        assert code == 1 and "Traceback" not in out and "doctor: " in out, out
        with admin.cursor() as cur:  # the remedy, as the rows say it: both PASS
            cur.execute(f'GRANT CREATE ON DATABASE "{pg_database}" TO "{role}"')
            for schema in schemas:
                cur.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
                cur.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
                cur.execute(f'GRANT SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"')
        _, rows = _rows(config, "privileges")
        assert [r["status"] for r in rows] == ["PASS"], rows
        code, (readable,) = _rows(config, "pg_dump_readable")
        assert readable["status"] == "PASS", readable
        assert code == 0  # the exit code 1 was the privileges'
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP OWNED BY "{role}"')
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()


def test_an_inactive_slot_holding_wal_fails_replication(
        fleet_config_file: Path, fleet_settings: Settings) -> None:
    slot = f"doctor_{uuid.uuid4().hex[:8]}"
    conn = server_connect(fleet_settings, "b")
    try:
        with conn.cursor() as cur:  # reserves WAL now, and nobody ever streams from it
            cur.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
            cur.execute("SELECT pg_switch_wal()")  # some WAL for it to hold
        code, rows = _rows(fleet_config_file, "replication")
        assert code == 1, rows
        (on_b,) = [r for r in rows if r["target"].startswith("b ")]
        assert on_b["status"] == "FAIL", rows
        assert f"inactive replication slot {slot} (physical)" in on_b["detail"]
        assert f"SELECT pg_drop_replication_slot('{slot}');" in on_b["detail"]
        assert all(r["status"] != "FAIL" for r in rows if r is not on_b), rows
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                        "WHERE slot_name = %s", (slot,))
    _, rows = _rows(fleet_config_file, "replication")
    (on_b,) = [r for r in rows if r["target"].startswith("b ")]
    assert on_b["status"] == "PASS" and "wal_level logical" in on_b["detail"], rows
    conn.close()
