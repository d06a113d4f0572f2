"""Moving a tenant between real servers online (logical replication), with a writer
running, and a crash at each step followed by a rerun."""

from __future__ import annotations

import time
from typing import Any

import pytest
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
from docex_ops.move.journal import COPYING, RENAMED, STARTED, SYNCED, VERIFIED
from docex_ops.move.run import finish_move, move_tenant
from docex_ops.schema.head import docbasket


def test_online_move_keeps_every_acknowledged_write(fleet_manager: TenantDatabaseManager
                                                    ) -> None:
    seed(fleet_manager, "mover", "b", 500)
    writer = Writer(fleet_manager, "mover")
    writer.start()
    time.sleep(0.3)
    result = move_tenant(fleet_manager, "mover", "c")
    time.sleep(0.3)
    writer.stop.set()
    writer.join(10)
    fleet = fleet_of(fleet_manager)
    schema = fleet.location("mover")
    assert result.outcome == "moved" and fleet.server_of("mover") == "c"
    on_target = names_on(fleet_manager, "c", schema)
    assert on_target is not None and len(on_target) == len(set(on_target))
    assert set(on_target) == {f"seed-{n}" for n in range(500)} | set(writer.acked)
    assert len(writer.acked) > 20
    assert names_on(fleet_manager, "b", schema) is None  # the source name is gone
    old = names_on(fleet_manager, "b", result.old_schema)
    assert old is not None and set(old) <= set(on_target)
    assert [t.tenant_id for t in fleet.discover().tenants] == ["mover"]  # the old copy is no tenant
    print(f"\nwrite pause seen by the writer: {writer.longest_pause * 1000:.0f} ms "
          f"(freeze {result.freeze_seconds * 1000:.0f} ms, {writer.errors} retried writes)")
    finish_move(fleet_manager, "mover")
    assert names_on(fleet_manager, "b", result.old_schema) is None
    assert fleet.moves.get("mover") is None


@pytest.mark.parametrize("step", [STARTED, COPYING, SYNCED, VERIFIED, RENAMED])
def test_a_crash_at_each_step_is_completed_or_rolled_back(fleet_manager: TenantDatabaseManager,
                                                          step: str) -> None:
    seed(fleet_manager, "crashy", "b", 50)
    fleet = fleet_of(fleet_manager)
    schema = fleet.location("crashy")

    def crash_at(reached: str) -> None:
        if reached == step:
            raise Crash(reached)

    with pytest.raises(Crash):
        move_tenant(fleet_manager, "crashy", "c", on_step=crash_at)
    fleet_manager.close_all_connections()  # the crashed process' connections are gone
    rerun = move_tenant(fleet_manager, "crashy", "main")  # the target is what was recorded
    expected = "completed" if step == RENAMED else "rolled back"
    assert rerun.outcome == expected and rerun.rows == 50
    home = "c" if step == RENAMED else "b"
    assert fleet.server_of("crashy") == home
    other = "b" if home == "c" else "c"
    assert sorted(names_on(fleet_manager, home, schema) or []) == \
        sorted(f"seed-{n}" for n in range(50))
    assert names_on(fleet_manager, other, schema) is None
    assert_no_replication_left(fleet_manager, ("b", "c"))
    with fleet_manager.tenant_transaction("crashy") as session:  # and it serves writes
        session.execute(insert(docbasket).values(basket("after")))
    assert "after" in (names_on(fleet_manager, home, schema) or [])


def test_cli_move_explains_wal_level_and_moves(fleet_config_file: Any) -> None:
    from click.testing import CliRunner

    from docex_ops.cli import main

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["--config", str(fleet_config_file), *args])

    assert run("tenants", "provision", "plain", "--server", "main").exit_code == 0
    refused = run("tenants", "move", "plain", "--to", "b")
    assert refused.exit_code == 1 and "wal_level=replica" in refused.output
    assert "restart the server" in refused.output
    assert run("tenants", "provision", "roamer", "--server", "b").exit_code == 0
    moved = run("--format", "json", "tenants", "move", "roamer", "--to", "c")
    assert moved.exit_code == 0, moved.output
    assert json_data(moved.stdout, "tenants move")["outcome"] == "moved"
    again = run("tenants", "move", "roamer", "--to", "b")
    assert again.exit_code == 1 and "--finish roamer" in again.output
    assert run("tenants", "move", "roamer", "--finish").exit_code == 0
    listed = run("--format", "json", "tenants", "list")
    assert listed.exit_code == 0
    where = {t["tenant"]: t["server"] for t in json_data(listed.stdout, "tenants list")["tenants"]}
    assert where["roamer"] == "c"


@pytest.mark.parametrize(("at", "damage"), [
    (SYNCED, "DELETE FROM {s}.docbasket WHERE name = 'seed-7'"),
    (SYNCED, "DROP INDEX {s}.idx_docbasket_status"),
    # After the full comparison at the checkpoint: only the final, incremental check
    # (counts, rows written since the checkpoint, structure) can see these.
    (VERIFIED, "UPDATE {s}.docbasket SET name = 'spoilt' WHERE name = 'seed-3'"),
    (VERIFIED, "DELETE FROM {s}.docbasket WHERE name = 'seed-4'"),
    (VERIFIED, "DROP INDEX {s}.idx_docbasket_status"),
    (VERIFIED, "DROP TABLE {s}.operation_dependencies"),
    (VERIFIED, "GRANT SELECT ON {s}.docbasket TO PUBLIC"),  # owners/privileges compared too
])
def test_a_copy_that_differs_is_rolled_back(fleet_manager: TenantDatabaseManager,
                                            at: str, damage: str) -> None:
    from conftest import server_connect

    from docex_ops.move.pg_online import MoveError

    seed(fleet_manager, "checked", "b", 20)
    fleet = fleet_of(fleet_manager)
    schema = fleet.location("checked")

    def spoil_target(step: str) -> None:
        if step == at:  # the copy is complete, indexes made: damage it behind our back
            conn = server_connect(fleet_manager.settings, "c")
            conn.cursor().execute(damage.format(s=f'"{schema}"'))
            conn.close()

    with pytest.raises(MoveError, match="differs from the source"):
        move_tenant(fleet_manager, "checked", "c", on_step=spoil_target)
    assert fleet.server_of("checked") == "b" and fleet.moves.get("checked") is None
    assert names_on(fleet_manager, "c", schema) is None
    assert len(names_on(fleet_manager, "b", schema) or []) == 20
