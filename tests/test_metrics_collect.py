"""observe.collect: the fleet snapshot, read against real PostgreSQL and SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from migration_helpers import HEAD, cli, cli_json, scripts_with

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.observe.collect import collect

UNIQUE_NAMES = {"0004_unique_names": 'op.create_index("uq_document_name", "document", '
                                     '["name"], unique=True)  # fast'
                                     '  # lint: allow index-not-concurrent: fails on purpose'}


@pytest.fixture
def tenants(manager: TenantDatabaseManager) -> Iterator[list[str]]:
    ids = ["t1", "t2", "t3"]
    for tenant in ids:
        manager.provision(tenant)
    manager.close_all_connections()
    yield ids


def test_snapshot_counts_a_tenant_downgraded_behind_head(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path) -> None:
    code, output = cli(config_file, "migrate", "downgrade", "-1", "--tenant", "t2", "--force")
    assert code == 0, output
    snapshot = collect(manager)
    assert snapshot.status.head == HEAD
    assert snapshot.status.counts == {"current": 2, "behind": 1}
    assert snapshot.behind_by == {"t2": 1}
    assert set(snapshot.sizes) == set(tenants) and all(n > 0 for n in snapshot.sizes.values())
    assert snapshot.runs[0].action == "downgrade" and snapshot.runs[0].tenants == {"done": 1}
    assert snapshot.pools is not None
    assert snapshot.isolation is None and snapshot.backups is None
    assert snapshot.problems == [] and snapshot.seconds is not None


def test_snapshot_names_the_failed_tenant_of_the_last_run(
        manager: TenantDatabaseManager, tenants: list[str], config_file: Path,
        tmp_path: Path) -> None:
    from test_migrate_runner import add_document

    add_document(manager, "t2", "same")
    add_document(manager, "t2", "same")
    scripts = str(scripts_with(tmp_path, UNIQUE_NAMES))
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--continue-on-error")
    assert code == 1
    last = collect(manager).runs[0]
    assert last.run_id == report["run_id"] and last.status == "failed"
    assert last.tenants == {"done": 2, "failed": 1}
    assert [f.tenant_id for f in last.failed] == ["t2"]
    assert last.seconds is not None and last.seconds >= 0


def test_a_missing_backup_folder_is_a_problem_not_an_error(
        manager: TenantDatabaseManager, tenants: list[str], tmp_path: Path) -> None:
    snapshot = collect(manager, backups=tmp_path / "nowhere")
    assert snapshot.backups is not None and snapshot.backups == {}
    assert any("nowhere" in p for p in snapshot.problems)


def test_the_control_reads_name_the_tables_the_writers_define() -> None:
    from docex_ops.isolation import records
    from docex_ops.migrate import runs
    from docex_ops.observe import control_reads as reads

    written = {runs.migration_runs.name: "run_id action target status started_at "
                                         "finished_at",
               runs.migration_run_tenants.name: "run_id tenant_id status error",
               records.isolation_runs.name: "record_id recorded_at",
               records.isolation_run_counts.name: "record_id check_name status results",
               records.isolation_run_findings.name: "record_id seq check_name status "
                                                     "tenant_id object detail"}
    read = (reads.RUNS, reads.RUN_TENANTS, reads.ISOLATION_RUNS, reads.ISOLATION_COUNTS,
            reads.ISOLATION_FINDINGS)
    assert sorted(written) == sorted(read)
    tables = {**runs.control_metadata.tables, **records.isolation_metadata.tables}
    for name, columns in written.items():
        assert set(columns.split()) <= set(tables[name].c.keys()), name


@pytest.mark.parametrize("kind", ["postgresql"])  # SQLite's own discovery loads it
def test_a_snapshot_never_loads_sqlalchemy(config_file: Path, tenants: list[str]) -> None:
    """The scrape path reads on plain DBAPI connections, as `migrate status` does: a
    quarter of a second of every scrape."""
    import subprocess
    import sys

    backups = config_file.parent / "backups"
    assert cli(config_file, "backup", "create", "--all", "--dest", str(backups))[0] == 0
    code = ("import sys; from docex_ops.cli import main; "
            f"main.main(['--config', {str(config_file)!r}, '-q', 'metrics', '--backups', "
            f"{str(backups)!r}], "
            "standalone_mode=False); "
            "print('SQLALCHEMY' if 'sqlalchemy' in sys.modules else 'PLAIN', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "docex_ops_tenant_backup_age_seconds{" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "PLAIN"


def test_a_changed_manifest_is_read_again(manager: TenantDatabaseManager,
                                          tenants: list[str], config_file: Path,
                                          tmp_path: Path) -> None:
    """A long-lived `metrics serve` parses each manifest once, but never keeps a stale one
    (unsigned manifests here, so one can honestly be given an older time)."""
    import json

    backups = tmp_path / "backups"
    assert cli(config_file, "backup", "create", "--tenant", "t1", "--dest", str(backups))[0] == 0
    first = collect(manager, backups=backups).backups
    assert first is not None and first["t1"].archives == 1 and first["t2"].archives == 0
    assert first["t1"].newest_verified_at is not None
    path = next(backups.glob("t1.*.manifest.json"))
    data = json.loads(path.read_text())
    data["finished_at"] = "2020-01-01T00:00:00Z"
    path.write_text(json.dumps(data, indent=1))
    again = collect(manager, backups=backups).backups
    assert again is not None and again["t1"].newest_at is not None
    assert again["t1"].newest_at.year == 2020
    path.unlink()
    gone = collect(manager, backups=backups).backups
    assert gone is not None and gone["t1"].archives == 0
