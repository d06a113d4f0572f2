"""``tenants rebalance``: the plan evens out counts and sizes; nothing moves without
--execute; executing it moves tenants with ``tenants move``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from json_support import json_data

from docex_ops.move.rebalance import PlannedMove, plan_moves

MB = 1 << 20


def _apply(layout: Mapping[str, Mapping[str, int]], planned: list[PlannedMove]
           ) -> dict[str, dict[str, int]]:
    after = {s: dict(t) for s, t in layout.items()}
    for move in planned:
        assert move.tenant_id in after[move.source], move  # moves start where the tenant is
        after[move.target][move.tenant_id] = after[move.source].pop(move.tenant_id)
    return after


def _spread(after: Mapping[str, Mapping[str, int]]) -> tuple[int, int]:
    counts = [len(t) for t in after.values()]
    sizes = [sum(t.values()) for t in after.values()]
    return max(counts) - min(counts), max(sizes) - min(sizes)


def test_counts_are_evened_out_onto_an_empty_server() -> None:
    layout = {"a": {f"t{n}": MB for n in range(9)}, "b": {f"u{n}": MB for n in range(3)},
              "c": {}}
    planned = plan_moves(layout)
    after = _apply(layout, planned)
    assert sorted(len(t) for t in after.values()) == [4, 4, 4]
    assert len(planned) == 5 and len({m.tenant_id for m in planned}) == 5
    assert {m.target for m in planned} <= {"b", "c"} and {m.source for m in planned} == {"a"}


def test_sizes_are_evened_out_with_equal_counts_by_swapping() -> None:
    layout = {"a": {"big1": 90 * MB, "big2": 80 * MB, "s1": MB},
              "b": {"s2": MB, "s3": 2 * MB, "s4": 3 * MB}}
    planned = plan_moves(layout)
    after = _apply(layout, planned)
    counts, sizes = _spread(after)
    assert counts == 0
    assert sizes < _spread(layout)[1] / 5  # 171 MB vs 6 MB before: now within ~34 MB
    assert {"big1", "big2"} & set(after["b"])


def test_a_balanced_fleet_gets_no_moves_and_pinned_tenants_stay() -> None:
    balanced = {"a": {"x": 10 * MB, "y": 10 * MB}, "b": {"z": 10 * MB, "w": 11 * MB}}
    assert plan_moves(balanced) == []
    assert plan_moves({"only": {"x": MB}}) == []
    lopsided = {"a": {"stay1": MB, "stay2": MB, "go": MB, "stay3": MB}, "b": {}}
    planned = plan_moves(lopsided, pinned={"stay1", "stay2", "stay3"})
    assert [m.tenant_id for m in planned] == ["go"]


def test_cli_plans_without_moving_and_executes_on_request(fleet_config_file: Any) -> None:
    from click.testing import CliRunner

    from docex_ops.cli import main

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["--config", str(fleet_config_file), *args])

    provisioned = run("tenants", "provision", "r1", "r2", "r3", "--server", "b")
    assert provisioned.exit_code == 0, provisioned.output
    plan = run("--format", "json", "tenants", "rebalance", "--dry-run")
    assert plan.exit_code == 0, plan.output
    payload = json_data(plan.stdout)
    assert payload["executed"] is False
    assert [m["from"] for m in payload["moves"]] == ["b", "b"]
    assert sorted(m["to"] for m in payload["moves"]) == ["c", "main"]
    assert {s["server"]: s["tenants"] for s in payload["after"]} == {"main": 1, "b": 1, "c": 1}
    listed = json_data(run("--format", "json", "tenants", "list").stdout)
    assert {t["server"] for t in listed["tenants"]} == {"b"}  # the plan moved nothing
    done = run("--format", "json", "tenants", "rebalance", "--execute", "--offline")
    assert done.exit_code == 0, done.output
    assert [m["moved"] for m in json_data(done.stdout)["moves"]] == ["moved", "moved"]
    listed = json_data(run("--format", "json", "tenants", "list").stdout)
    assert sorted(t["server"] for t in listed["tenants"]) == ["b", "c", "main"]
    again = json_data(run("--format", "json", "tenants", "rebalance").stdout)
    assert again["moves"] == [] and again["executed"] is False
