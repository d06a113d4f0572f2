"""Waves: a failing tenant in wave 2 halts the run before waves 3-4, and ``migrate resume``
finishes them; the report groups results by wave."""

from __future__ import annotations

from pathlib import Path

import pytest
from migration_helpers import cli_json, scripts_with
from sqlalchemy import delete
from test_migrate_runner import UNIQUE_NAMES, add_document

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.tenant import TenantStep
from docex_ops.migrate.waves import parse_waves, split_waves
from docex_ops.schema.head import document

TENANTS = [f"w{n}" for n in range(1, 9)]


def _steps(n: int) -> list[TenantStep]:
    return [TenantStep(f"t{i}", f"t{i}", None, "head", "upgrade") for i in range(n)]


def test_split_waves_is_cumulative_with_the_canary_first() -> None:
    sizes = [len(w) for w in split_waves(_steps(8), parse_waves("1,25%,50%,100%"))]
    assert sizes == [1, 1, 2, 4]
    assert [len(w) for w in split_waves(_steps(100), ("1", "5%", "25%", "100%"))] == [
        1, 4, 20, 75]
    assert [len(w) for w in split_waves(_steps(10), ("50%",), canary=2)] == [2, 3, 5]
    assert [len(w) for w in split_waves(_steps(3), ())] == [3]
    with pytest.raises(ValueError):
        parse_waves("0,abc")


def test_waves_halt_on_wave_2_and_resume_finishes(
        manager: TenantDatabaseManager, config_file: Path, tmp_path: Path) -> None:
    for tenant in TENANTS:
        manager.provision(tenant)
    add_document(manager, "w2", "twin")  # the unique index fails here: wave 2
    add_document(manager, "w2", "twin")
    manager.close_all_connections()
    order = tmp_path / "order.txt"
    order.write_text("\n".join(TENANTS) + "\n")
    scripts = str(scripts_with(tmp_path, UNIQUE_NAMES))
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--waves", "1,25%,50%,100%", "--order", str(order))
    assert code == 1
    rows = report["tenants"]
    assert [(r["wave"], r["tenant"], r["status"]) for r in rows] == [
        (1, "w1", "done"), (2, "w2", "failed"),
        (3, "w3", "not started"), (3, "w4", "not started"),
        *[(4, t, "not started") for t in TENANTS[4:]]]
    with manager.tenant_transaction("w2") as session:  # the operator fixes the data
        session.execute(delete(document).where(document.c.name == "twin"))
    manager.close_all_connections()
    code, resumed = cli_json(config_file, "migrate", "--scripts", scripts, "resume",
                             report["run_id"])
    assert code == 0, resumed
    assert {r["tenant"] for r in resumed["tenants"] if r["status"] == "done"} == set(
        TENANTS[1:])
    code, status = cli_json(config_file, "migrate", "--scripts", scripts, "status")
    assert {t["revision"] for t in status["tenants"]} == {"0004_unique_names"}


def test_failure_rate_lets_a_wave_go_on(manager: TenantDatabaseManager, config_file: Path,
                                        tmp_path: Path) -> None:
    for tenant in TENANTS[:4]:
        manager.provision(tenant)
    add_document(manager, "w2", "twin")
    add_document(manager, "w2", "twin")
    manager.close_all_connections()
    scripts = str(scripts_with(tmp_path, UNIQUE_NAMES))
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--waves", "2,100%", "--order", "name", "--continue-on-error",
                            "--max-failure-rate", "0.5")
    assert code == 1  # w2 failed, but 1 of 2 is not above 0.5: wave 2 ran
    status = {r["tenant"]: (r["wave"], r["status"]) for r in report["tenants"]}
    assert status == {"w1": (1, "done"), "w2": (1, "failed"), "w3": (2, "done"),
                      "w4": (2, "done")}
