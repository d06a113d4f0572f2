"""Upgrade runs the lint first: refused before any tenant is touched, allowed by a waiver
(``--allow`` or the revision's own ``lint_waivers``); ``--dry-run`` shows the findings
and refuses as the run does; ``migrate lint`` reports the fleet's sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
from migration_helpers import HEAD, cli, cli_json, scripts_with
from sqlalchemy import text
from test_migrate_runner import add_document

from docex_ops.manager.tenant_manager import TenantDatabaseManager

RENAME = {"0004_rename": 'op.rename_table("file_history", "file_log")  # fast'}


@pytest.fixture
def tenants(manager: TenantDatabaseManager) -> list[str]:
    for tenant in ("t1", "t2"):
        manager.provision(tenant)
    manager.close_all_connections()
    return ["t1", "t2"]


def _revisions(config_file: Path) -> dict[str, str]:
    code, status = cli_json(config_file, "migrate", "status")
    assert code == 0, status
    return {t["tenant"]: t["revision"] for t in status["tenants"]}


def test_upgrade_refused_by_a_finding_and_allowed_by_allow(
        tenants: list[str], config_file: Path, tmp_path: Path) -> None:
    scripts = str(scripts_with(tmp_path, RENAME))
    code, out = cli(config_file, "migrate", "--scripts", scripts, "upgrade")
    assert code == 1, out
    assert "[rename]" in out and "--allow rename" in out and "nothing was changed" in out
    assert set(_revisions(config_file).values()) == {HEAD}  # no tenant touched
    code, out = cli(config_file, "migrate", "--scripts", scripts, "upgrade", "--dry-run")
    assert code == 1, out  # the plan, then the run's own refusal and exit
    assert "[rename] error" in out and "--allow rename" in out and "dry run:" in out
    code, out = cli(config_file, "migrate", "--scripts", scripts, "upgrade",
                    "--allow", "rename")
    assert code == 0, out
    assert set(_revisions(config_file).values()) == {"0004_rename"}


def test_upgrade_allowed_by_the_revisions_waiver(
        tenants: list[str], config_file: Path, tmp_path: Path) -> None:
    location = scripts_with(tmp_path, RENAME)
    path = location / "versions" / "0004_rename.py"
    path.write_text(path.read_text().replace(
        "fast_path = True", "fast_path = True\nlint_waivers = {'rename': 'no app reads it'}"))
    code, out = cli(config_file, "migrate", "--scripts", str(location), "upgrade")
    assert code == 0, out
    assert "waived: in the revision: no app reads it" in out
    assert set(_revisions(config_file).values()) == {"0004_rename"}


def test_unknown_allow_rule_is_refused(tenants: list[str], config_file: Path,
                                       tmp_path: Path) -> None:
    scripts = str(scripts_with(tmp_path, RENAME))
    code, out = cli(config_file, "migrate", "--scripts", scripts, "upgrade",
                    "--allow", "no-such-rule")
    assert code == 1 and "unknown lint rule" in out
    assert set(_revisions(config_file).values()) == {HEAD}


def test_lint_command_reports_sizes(kind: str, manager: TenantDatabaseManager,
                                    tenants: list[str], config_file: Path,
                                    tmp_path: Path) -> None:
    code, payload = cli_json(config_file, "migrate", "lint")
    assert code == 0, payload
    assert payload["ok"] and payload["revisions"][-1] == HEAD
    index = {"0004_ix": 'op.create_index("ix_doc_name", "document", ["name"])  # fast'}
    scripts = str(scripts_with(tmp_path, index))
    code, payload = cli_json(config_file, "migrate", "--scripts", scripts, "lint",
                             f"{HEAD}:head")
    if kind == "sqlite":  # SQLite builds the index in place: nothing to report
        assert code == 0 and payload["findings"] == []
        return
    assert code == 1
    [finding] = payload["findings"]
    assert finding["rule"] == "index-not-concurrent" and finding["lock"] == "SHARE"
    assert finding["table"] == "document" and finding["rows"] == 0
    for n in range(3):  # the largest tenant's table, from pg_class.reltuples
        add_document(manager, "t2", f"doc{n}")
    with manager.backend.control_engine().begin() as conn:
        conn.execute(text(f'ANALYZE "{manager.backend.location("t2")}".document'))
    code, payload = cli_json(config_file, "migrate", "--scripts", scripts, "lint",
                             f"{HEAD}:head")
    [finding] = payload["findings"]
    assert finding["rows"] == 3 and finding["worst_seconds"] is not None


def test_batch_drop_column_stops_the_upgrade_on_either_backend(
        tenants: list[str], config_file: Path, tmp_path: Path) -> None:
    # As batch revisions are usually written: the table reflected (no copy_from), so on
    # SQLite offline rendering refuses and the lint reads the rebuild run in memory.
    drop = {"0004_drop": 'with op.batch_alter_table("document") as batch:\n'
                         '    batch.drop_column("raw_content")'}
    scripts = str(scripts_with(tmp_path, drop))
    code, out = cli(config_file, "migrate", "--scripts", scripts, "upgrade")
    assert code == 1, out
    assert "[drop]" in out and "raw_content" in out and "nothing was changed" in out
    assert set(_revisions(config_file).values()) == {HEAD}
    code, out = cli(config_file, "migrate", "--scripts", scripts, "upgrade", "--force")
    assert code == 0, out
    assert set(_revisions(config_file).values()) == {"0004_drop"}


def test_the_gate_is_the_operations_not_the_clis(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path,
        tmp_path: Path) -> None:
    """A runbook calling the operation meets the same lint as the CLI: nothing runs."""
    from docex_ops.migrate import MigrationScripts, RunOptions, Selection, make_plan, run_plan
    from docex_ops.migrate.lint_gate import LintRefusal
    from docex_ops.migrate.runner import upgrade_tenants

    scripts = MigrationScripts(scripts_with(tmp_path, RENAME))
    shown: list[object] = []
    plan = make_plan(manager, scripts, Selection(), "upgrade", "head")
    with pytest.raises(LintRefusal, match=r"\(rename\); nothing was changed"):
        run_plan(manager, scripts, plan, RunOptions(), on_lint=shown.append)
    assert len(shown) == 1  # the findings were shown before the refusal
    with pytest.raises(LintRefusal):
        upgrade_tenants(manager, ["t1"], scripts=scripts)
    assert set(_revisions(config_file).values()) == {HEAD}
    code, runs = cli_json(config_file, "migrate", "runs")
    assert code == 0 and runs["runs"] == [], runs  # refused before any run was recorded
    report = run_plan(manager, scripts, plan, RunOptions(allow=("rename",)))
    assert report.ok and set(_revisions(config_file).values()) == {"0004_rename"}


def test_resume_keeps_the_runs_waivers(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path,
        tmp_path: Path) -> None:
    """A run started with --allow that failed on one tenant resumes under the same waiver
    (the gate now also guards resume)."""
    scripts = str(scripts_with(tmp_path, RENAME))
    with manager.tenant_transaction("t2") as session:  # t2 cannot take the rename
        session.execute(text("CREATE TABLE file_log (id integer)"))
    manager.close_all_connections()
    code, payload = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                             "--allow", "rename", "--continue-on-error")
    assert code == 1, payload
    assert _revisions(config_file) == {"t1": "0004_rename", "t2": HEAD}
    with manager.tenant_transaction("t2") as session:
        session.execute(text("DROP TABLE file_log"))
    manager.close_all_connections()
    code, out = cli(config_file, "migrate", "--scripts", scripts, "resume", payload["run_id"])
    assert code == 0, out
    assert "[rename] error (waived: --allow)" in out
    assert _revisions(config_file) == {"t1": "0004_rename", "t2": "0004_rename"}
