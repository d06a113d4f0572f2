"""Fleet commands through the CLI, over three real servers: list, provision --server,
place, migrate status/upgrade grouped by server, backup --all and restore."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import server_connect
from json_support import envelope, json_data

from docex_ops.cli import main
from docex_ops.config.settings import load_settings


def _run(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config), "--format", "json", *args])


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json_data(result.stdout)


def _envelope(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return envelope(result.stdout)


def test_provision_on_a_server_and_list_with_servers(fleet_config_file: Path) -> None:
    assert _run(fleet_config_file, "tenants", "provision", "alpha", "--server", "c"
                ).exit_code == 0
    assert _run(fleet_config_file, "tenants", "provision", "beta", "gamma").exit_code == 0
    listed = _envelope(_run(fleet_config_file, "tenants", "list"))
    where = {t["tenant"]: t["server"] for t in listed["data"]["tenants"]}
    assert where["alpha"] == "c" and len(set(where.values())) == 3
    assert listed["data"]["servers"] == ["main", "b", "c"] and listed["problems"] == []
    bad = _run(fleet_config_file, "tenants", "provision", "delta", "--server", "nowhere")
    assert bad.exit_code == 2 and "no server 'nowhere'" in bad.output
    shown = _json(_run(fleet_config_file, "tenants", "show", "alpha"))
    assert shown["server"] == "c"


def test_list_reports_problems_and_place_records_a_schema(fleet_config_file: Path) -> None:
    settings = load_settings(fleet_config_file)
    schema = settings.postgres.schema_template.format(tenant_id="orphan")
    conn = server_connect(settings, "b")
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".docbasket (id text)')
    conn.close()
    listed = _run(fleet_config_file, "tenants", "list")
    assert listed.exit_code == 1
    payload = envelope(listed.stdout, "tenants list")
    assert [p["tenant"] for p in payload["problems"]] == ["orphan"]
    assert payload["ok"] is False and "orphan" in payload["error"]
    assert "tenants place orphan --server NAME" in listed.stderr
    assert _run(fleet_config_file, "tenants", "place", "orphan", "--server", "c").exit_code == 1
    assert _run(fleet_config_file, "tenants", "place", "orphan", "--server", "b").exit_code == 0
    listed = _json(_run(fleet_config_file, "tenants", "list"))
    assert [(t["tenant"], t["server"]) for t in listed["tenants"]] == [("orphan", "b")]


def test_migrate_status_and_upgrade_grouped_by_server(fleet_config_file: Path) -> None:
    ids = [f"m{n}" for n in range(6)]
    assert _run(fleet_config_file, "tenants", "provision", *ids).exit_code == 0
    down = _run(fleet_config_file, "migrate", "downgrade", "-1", "--force", "--jobs", "2")
    assert down.exit_code == 0, down.output
    status = _json(_run(fleet_config_file, "migrate", "status"))
    assert sorted(status["by_server"]) == ["b", "c", "main"]
    assert all(sum(revs.values()) == 2 for revs in status["by_server"].values())
    assert status["counts"] == {"behind": 6}
    assert _run(fleet_config_file, "migrate", "status", "--check").exit_code == 1
    up = _json(_run(fleet_config_file, "migrate", "upgrade", "--jobs", "1"))
    assert up["ok"] and [t["status"] for t in up["tenants"]] == ["done"] * 6
    servers = [t["server"] for t in up["tenants"]]
    assert servers == sorted(servers)  # grouped by server
    status = _json(_run(fleet_config_file, "migrate", "status", "--check"))
    assert status["counts"] == {"current": 6}


def test_backup_all_and_restore_across_servers(fleet_config_file: Path, tmp_path: Path
                                               ) -> None:
    for tenant_id, server in (("keep_b", "b"), ("keep_c", "c"), ("keep_main", "main")):
        assert _run(fleet_config_file, "tenants", "provision", tenant_id, "--server", server
                    ).exit_code == 0
    settings = load_settings(fleet_config_file)
    conn = server_connect(settings, "c")
    schema = settings.postgres.schema_template.format(tenant_id="keep_c")
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO \"{schema}\".docbasket (id, name, storage_config, status, "
                    "created_at, updated_at) VALUES ('bas_1', 'one', '{}', 'active', now(), "
                    "now())")
    conn.close()
    dest = tmp_path / "backups"
    created = _json(_run(fleet_config_file, "backup", "create", "--all", "--dest", str(dest),
                         "--jobs", "2"))
    by_tenant = {r["tenant"]: r for r in created["backups"]}
    assert sorted(by_tenant) == ["keep_b", "keep_c", "keep_main"]
    manifests = sorted(dest.glob("keep_c.*.json"))
    assert len(manifests) == 1
    # Dropped, then restored: it comes back on a server, recorded in the directory.
    assert _run(fleet_config_file, "tenants", "drop", "keep_c", "--yes", "--force",
                "--safety-dir", str(tmp_path / "safety")).exit_code == 0
    assert len(list((tmp_path / "safety").glob("keep_c.*.json"))) == 1  # held a row
    restored = _run(fleet_config_file, "backup", "restore", str(manifests[0]))
    assert restored.exit_code == 0, restored.output
    listed = _json(_run(fleet_config_file, "tenants", "list"))
    assert {t["tenant"]: t["state"] for t in listed["tenants"]}["keep_c"] == "versioned"
    shown = _json(_run(fleet_config_file, "tenants", "show", "keep_c"))
    assert shown["rows"]["docbasket"] == 1


_TWO_SAME_NAMES = """
INSERT INTO {s}.docbasket (id, name, storage_config, status, created_at, updated_at)
VALUES ('bas_dup', 'b', '{{}}', 'active', now(), now());
INSERT INTO {s}.document (id, basket_id, name, source, path, document_type, checksum, status,
                          processing_attempts, created_at, updated_at)
VALUES ('doc_1', 'bas_dup', 'same', 's', 'p', 'file', 'c', 'new', 0, now(), now()),
       ('doc_2', 'bas_dup', 'same', 's', 'p', 'file', 'c', 'new', 0, now(), now());
"""


def test_resume_on_a_fleet_runs_per_server_and_groups_by_server(
        fleet_config_file: Path, tmp_path: Path) -> None:
    """A run that stopped at a failing tenant is resumed like an upgrade on a fleet: the
    per-server job limits apply and the report is grouped by server."""
    from migration_helpers import scripts_with

    ids = [f"r{n}" for n in range(6)]
    assert _run(fleet_config_file, "tenants", "provision", *ids).exit_code == 0
    settings = load_settings(fleet_config_file)
    listed = _json(_run(fleet_config_file, "tenants", "list"))
    where = {t["tenant"]: t["server"] for t in listed["tenants"]}
    assert len(set(where.values())) == 3  # spread over the three servers
    schema = settings.postgres.schema_template.format(tenant_id="r0")
    conn = server_connect(settings, where["r0"])
    conn.cursor().execute(_TWO_SAME_NAMES.format(s=f'"{schema}"'))
    scripts = str(scripts_with(tmp_path, {
        "0004_unique_names": 'op.create_index("uq_document_name", "document", ["name"], '
                             "unique=True)  # fast"
                             "  # lint: allow index-not-concurrent: fails on purpose"}))
    first = _run(fleet_config_file, "migrate", "--scripts", scripts, "upgrade", "--jobs", "1")
    assert first.exit_code == 1, first.output
    report = json_data(first.stdout)
    status = {t["tenant"]: t["status"] for t in report["tenants"]}
    assert status["r0"] == "failed" and set(status) == set(ids)
    conn.cursor().execute(f"DELETE FROM \"{schema}\".document WHERE id = 'doc_2'")
    conn.close()
    resumed = _json(_run(fleet_config_file, "migrate", "--scripts", scripts, "resume",
                         report["run_id"], "--jobs", "1"))
    assert resumed["ok"]
    again = {t["tenant"]: t for t in resumed["tenants"]}
    assert set(again) == {t for t, s in status.items() if s != "done"}
    assert all(t["status"] == "done" for t in again.values())
    assert all(t["server"] == where[t["tenant"]] for t in again.values())
    servers = [t["server"] for t in resumed["tenants"]]
    assert servers == sorted(servers)  # grouped by server
    final = _json(_run(fleet_config_file, "migrate", "--scripts", scripts, "status"))
    assert final["counts"] == {"current": 6}
