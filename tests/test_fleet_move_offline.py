"""Moving a tenant offline (pg_dump | pg_restore) between real servers: writes refused
while it copies, nothing acknowledged lost, and a crash at each step completed or undone."""

from __future__ import annotations

import time
from typing import Any

import psycopg2
import pytest
from conftest import server_connect
from json_support import json_data
from move_support import (
    Crash,
    Writer,
    assert_no_replication_left,
    basket,
    fleet_of,
    names_on,
    seed,
)
from sqlalchemy import insert

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move.journal import COPYING, RENAMED, STARTED, SYNCED
from docex_ops.move.run import MoveOptions, finish_move, move_tenant
from docex_ops.schema.head import docbasket
from docex_ops.topology.directory import ACTIVE, FROZEN

OFFLINE = MoveOptions(offline=True)


def _write_from_outside(manager: TenantDatabaseManager, server: str, schema: str) -> str:
    """A write from another process' connection, with a short lock timeout: the error."""
    conn = server_connect(manager.settings, server)
    try:
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = '200ms'")
            cur.execute(f'UPDATE "{schema}".docbasket SET name = name')
        return "written"
    except psycopg2.Error as exc:
        return exc.pgcode or "error"
    finally:
        conn.close()


def test_offline_move_refuses_writes_while_copying_and_keeps_acknowledged_ones(
        fleet_manager: TenantDatabaseManager) -> None:
    seed(fleet_manager, "boxed", "main", 300)  # main runs wal_level=replica
    fleet = fleet_of(fleet_manager)
    schema = fleet.location("boxed")
    seen: dict[str, Any] = {}

    def during(step: str) -> None:
        if step != COPYING:
            return
        seen["state"] = fleet.placement("boxed").state  # type: ignore[union-attr]
        try:
            with fleet_manager.tenant_transaction("boxed") as session:
                session.execute(insert(docbasket).values(basket("sneaked-in")))
        except RuntimeError as exc:
            seen["refused"] = str(exc)
        seen["outside"] = _write_from_outside(fleet_manager, "main", schema)

    writer = Writer(fleet_manager, "boxed")
    writer.start()
    time.sleep(0.3)
    result = move_tenant(fleet_manager, "boxed", "b", OFFLINE, on_step=during)
    time.sleep(0.3)
    writer.stop.set()
    writer.join(10)
    assert seen["state"] == FROZEN
    assert "frozen" in seen["refused"] and "offline move" in seen["refused"]
    assert seen["outside"] == "55P03"  # lock_not_available: held by the freeze
    assert result.outcome == "moved" and fleet.server_of("boxed") == "b"
    assert fleet.placement("boxed").state == ACTIVE  # type: ignore[union-attr]
    on_target = names_on(fleet_manager, "b", schema)
    assert on_target is not None and len(on_target) == len(set(on_target))
    assert set(on_target) == {f"seed-{n}" for n in range(300)} | set(writer.acked)
    assert "sneaked-in" not in on_target
    assert len(writer.acked) > 20 and result.rows >= 300
    assert names_on(fleet_manager, "main", schema) is None
    assert names_on(fleet_manager, "main", result.old_schema) is not None
    assert [t.tenant_id for t in fleet.discover().tenants] == ["boxed"]
    finish_move(fleet_manager, "boxed")
    assert names_on(fleet_manager, "main", result.old_schema) is None


@pytest.mark.parametrize("step", [STARTED, COPYING, SYNCED, RENAMED])
def test_offline_crash_at_each_step_is_completed_or_rolled_back(
        fleet_manager: TenantDatabaseManager, step: str) -> None:
    seed(fleet_manager, "fragile", "main", 40)
    fleet = fleet_of(fleet_manager)
    schema = fleet.location("fragile")

    def crash_at(reached: str) -> None:
        if reached == step:
            raise Crash(reached)

    with pytest.raises(Crash):
        move_tenant(fleet_manager, "fragile", "c", OFFLINE, on_step=crash_at)
    fleet_manager.close_all_connections()
    rerun = move_tenant(fleet_manager, "fragile", "b", OFFLINE)  # the journal's target wins
    done = step == RENAMED
    assert rerun.outcome == ("completed" if done else "rolled back") and rerun.rows == 40
    home, other = ("c", "main") if done else ("main", "c")
    assert fleet.server_of("fragile") == home
    assert fleet.placement("fragile").state == ACTIVE  # type: ignore[union-attr]
    assert sorted(names_on(fleet_manager, home, schema) or []) == \
        sorted(f"seed-{n}" for n in range(40))
    assert names_on(fleet_manager, other, schema) is None
    assert_no_replication_left(fleet_manager, ("b", "c"))
    with fleet_manager.tenant_transaction("fragile") as session:
        session.execute(insert(docbasket).values(basket("after")))
    assert "after" in (names_on(fleet_manager, home, schema) or [])


def test_cli_offline_move_from_a_server_without_logical_replication(
        fleet_config_file: Any) -> None:
    from click.testing import CliRunner

    from docex_ops.cli import main

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["--config", str(fleet_config_file), *args])

    assert run("tenants", "provision", "grounded", "--server", "main").exit_code == 0
    online = run("tenants", "move", "grounded", "--to", "c")
    assert online.exit_code == 1 and "--offline" in online.output
    moved = run("--format", "json", "tenants", "move", "grounded", "--to", "c", "--offline")
    assert moved.exit_code == 0, moved.output
    done = json_data(moved.stdout, "tenants move")
    assert done["outcome"] == "moved" and done["to"] == "c"
    assert run("tenants", "move", "grounded", "--finish").exit_code == 0
    listed = run("--format", "json", "tenants", "list")
    assert listed.exit_code == 0
    where = {t["tenant"]: t["server"] for t in json_data(listed.stdout, "tenants list")["tenants"]}
    assert where["grounded"] == "c"
