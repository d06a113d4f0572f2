"""One JSON language: every command's --format json is the envelope of cli/output.py and
matches its schema in docs/json/ (run on real SQLite files and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click
import pytest
from cli_tree import leaf_commands
from click.testing import CliRunner
from json_support import SCHEMAS, envelope, json_data, schema_path
from split_data import MAPPING, make_pg_source, make_sqlite_source

from docex_ops.cli import main
from docex_ops.cli.output import utc_time

SPLIT_FLAGS = ("--unmapped", "skip", "--cross-tenant-edges", "drop")


class Deployment:
    """A config file and the CLI run against it, each run's stdout checked."""

    def __init__(self, config: Path) -> None:
        self.config = config

    def run(self, *args: str, code: int = 0) -> dict[str, Any]:
        result = CliRunner().invoke(main, ["--config", str(self.config), "--format", "json",
                                           *args])
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
        document = envelope(result.stdout)
        assert document["ok"] is (code == 0)
        return document


def _leaf_commands() -> list[str]:
    return [path for path, _ in leaf_commands()]


@pytest.fixture
def sqlite(tmp_path: Path, settings_factory: Any) -> Deployment:
    from docs_support import with_files, write_config

    settings = with_files(settings_factory("sqlite"), tmp_path)
    return Deployment(write_config(settings, tmp_path / "config.yaml"))


@pytest.fixture
def postgres(tmp_path: Path, settings_factory: Any) -> Deployment:
    from docs_support import with_files, write_config

    settings = with_files(settings_factory("postgresql"), tmp_path)
    return Deployment(write_config(settings, tmp_path / "config.yaml"))


def test_every_command_has_a_schema_and_every_schema_a_command() -> None:
    commands = _leaf_commands()
    assert "tenants list" in commands and "pools report" in commands
    missing = [c for c in commands if not schema_path(c).is_file()]
    assert not missing, f"commands without docs/json/<command>.schema.json: {missing}"
    stale = sorted({p.name for p in SCHEMAS.glob("*.schema.json")}
                   - {schema_path(c).name for c in commands})
    assert not stale, f"schemas of no command: {stale}"
    for command in commands:
        schema = json.loads(schema_path(command).read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["properties"]["command"] == {"const": command}
        assert schema["required"] == ["command", "ok", "data", "problems", "error"]


def test_every_command_takes_format_and_only_the_envelope_writes_json() -> None:
    """Each command accepts --format; JSON reaches stdout only through cli/common.py's
    envelope (one writer), never a command module's own json.dumps."""
    for command in _leaf_commands():
        cmd: click.Command = main
        for name in command.split():
            assert isinstance(cmd, click.Group)
            found = cmd.get_command(click.Context(cmd), name)
            assert found is not None
            cmd = found
        assert any("--format" in p.opts for p in cmd.params), command
    cli_dir = Path(__file__).resolve().parents[1] / "docex_ops" / "cli"
    writers = {p.name for p in cli_dir.glob("*.py")
               if "render_json(" in p.read_text() or "json.dumps(" in p.read_text()}
    # output.py defines it, common.py writes the envelope, pools_render.py is the library
    # rendering of render_pool_report, audit.py renders a table cell as stored.
    assert writers <= {"output.py", "common.py", "pools_render.py", "audit.py"}, writers


def test_tenants_and_migrate_on_sqlite(sqlite: Deployment) -> None:
    run = sqlite.run
    assert [t["tenant"] for t in run("tenants", "provision", "a", "b", "c")["data"][
        "tenants"]] == ["a", "b", "c"]
    listed = run("tenants", "list")
    assert listed["command"] == "tenants list"
    assert [t["tenant"] for t in listed["data"]["tenants"]] == ["a", "b", "c"]
    assert run("tenants", "show", "a")["data"]["rows"]["docbasket"] == 0
    assert run("tenants", "drop", "c", "--dry-run")["data"]["tenants"][0]["action"] == \
        "would drop"
    assert run("tenants", "drop", "c", "--yes")["data"]["tenants"][0]["action"] == "dropped"
    assert run("migrate", "status")["data"]["counts"] == {"current": 2}
    assert run("migrate", "history")["data"]["revisions"][-1]["revision"] == \
        run("migrate", "status")["data"]["head"]
    down = run("migrate", "downgrade", "0002_docex_2_9_9", "--force", "--tenant", "a",
               "--safety-dir", str(sqlite.config.parent / "safety"))
    assert [t["status"] for t in down["data"]["tenants"]] == ["done"]
    planned = run("migrate", "upgrade", "--dry-run")["data"]
    assert [s["tenant"] for s in planned["steps"]] == ["a"] and planned["already"] == ["b"]
    assert "BEGIN" in run("migrate", "upgrade", "--sql")["data"]["sql"][0].upper()
    assert [t["tenant"] for t in run("migrate", "upgrade")["data"]["tenants"]] == ["a"]
    assert run("migrate", "stamp", "head")["data"]["action"] == "stamp"
    assert {t["status"] for t in run("migrate", "check")["data"]["tenants"]} == {"matches"}
    assert run("migrate", "adopt", "--dry-run")["command"] == "migrate adopt"
    runs = run("migrate", "runs")["data"]["runs"]
    assert runs[0]["started_at"].endswith("Z"), runs[0]  # UTC, never a naive time
    assert run("migrate", "lint")["data"]["ok"] is True
    refused = run("migrate", "downgrade", "base", "--tenant", "a", code=1)
    assert refused["problems"] and refused["problems"][0]["tenant"] == "a"
    assert refused["error"].startswith("migration incomplete")
    events = run("audit", "tail", "-n", "50")["data"]["events"]
    assert events and all(e["time"].endswith("Z") for e in events)
    assert run("config", "check")["data"]["source"] == str(sqlite.config)
    assert run("cleanup", "--dry-run")["data"]["objects"] == []
    report = run("pools", "report")["data"]
    assert [f["tenant"] for f in report["files"]] == ["a", "b"]
    assert utc_time(report["generated_at"]) == report["generated_at"]
    isolation = run("verify-isolation")["data"]
    assert isolation["backend"] == "sqlite" and isolation["counts"]["FAIL"] == 0


def test_backup_commands_on_sqlite(sqlite: Deployment, tmp_path: Path) -> None:
    run = sqlite.run
    run("tenants", "provision", "a", "b")
    dest = tmp_path / "bk"
    made = run("backup", "create", "--all", "--dest", str(dest))["data"]["backups"]
    assert [b["tenant"] for b in made] == ["a", "b"]
    listed = run("backup", "list", str(dest))["data"]["backups"]
    assert all(b["finished_at"].endswith("Z") for b in listed)
    assert [v["status"] for v in run("backup", "verify", str(dest))["data"]["archives"]] == \
        ["ok", "ok"]
    restored = run("backup", "restore", made[0]["manifest"], "--as", "a2")["data"]
    assert (restored["tenant"], restored["source_tenant"]) == ("a2", "a")
    pruned = run("backup", "prune", str(dest), "--keep", "1", "--dry-run")["data"]
    assert pruned["dry_run"] is True and len(pruned["kept"]) == 2


def test_split_commands_on_sqlite(sqlite: Deployment, tmp_path: Path) -> None:
    source = make_sqlite_source(tmp_path / "single.db")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    args = ("--source", str(source), "--mapping", str(mapping))
    blocked = sqlite.run("split", "plan", *args, code=1)
    assert blocked["problems"] and all(p["tenant"] is None for p in blocked["problems"])
    plan = sqlite.run("split", "plan", *args, *SPLIT_FLAGS)["data"]
    assert sorted(plan["tenants"]) == ["acme", "globex"]
    assert {c["option"] for c in plan["choices"]} >= {"--cross-tenant-edges drop"}
    assert not any(k.startswith("--") for k in plan)  # options are values, never keys
    done = sqlite.run("split", "run", *args, *SPLIT_FLAGS)["data"]
    assert {r["tenant"] for r in done["results"]} == {"acme", "globex"}
    assert sqlite.run("split", "verify", *args, *SPLIT_FLAGS)["data"]["ok"] is True


def test_failures_are_envelopes_too(sqlite: Deployment) -> None:
    missing = sqlite.run("tenants", "show", "nosuch", code=2)
    assert missing["data"] is None and "nosuch" in missing["error"]
    usage = sqlite.run("tenants", "drop", "nosuch", "--bogus", code=2)
    assert usage["command"] == "tenants drop" and "--bogus" in usage["error"]
    revision = sqlite.run("migrate", "upgrade", "9999_nope", code=2)
    assert revision["command"] == "migrate upgrade" and "9999_nope" in revision["error"]


def test_postgres_commands(postgres: Deployment, tmp_path: Path, pg_conn: Any,
                           pg_database: str) -> None:
    """Where PostgreSQL's output differs: servers, connections, checks, close-idle."""
    run = postgres.run
    run("tenants", "provision", "a", "b")
    listed = run("tenants", "list")["data"]
    assert listed["backend"] == "postgresql" and len(listed["tenants"]) == 2
    report = run("pools", "report")["data"]
    assert report["server"]["max_connections"] > 0 and report["capacity"]["tenants"] == 2
    assert run("verify-isolation", "--tenant", "a")["data"]["backend"] == "postgresql"
    closed = run("pools", "close-idle", "--idle-for", "1h", "--dry-run")["data"]
    assert closed["dry_run"] is True and closed["idle_for_s"] == 3600
    made = run("backup", "create", "--tenant", "a", "--dest", str(tmp_path / "bk"))["data"]
    assert [b["tenant"] for b in made["backups"]] == ["a"]
    assert run("migrate", "status")["data"]["counts"] == {"current": 2}
    schema = f"src_{uuid.uuid4().hex[:8]}"
    source = make_pg_source(pg_conn, pg_database, schema)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    plan = run("split", "plan", "--source", source, "--source-schema", schema,
               "--mapping", str(mapping), *SPLIT_FLAGS)["data"]
    assert plan["ok"] is True


def test_watch_writes_newline_delimited_envelopes(sqlite: Deployment) -> None:
    sqlite.run("tenants", "provision", "a")
    result = CliRunner().invoke(main, ["--config", str(sqlite.config), "--format", "json",
                                       "pools", "report", "--watch", "500ms", "--count", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout  # one compact document per line, nothing else
    for line in lines:
        assert json_data(line, "pools report")["files"][0]["tenant"] == "a"


def test_report_file_is_the_envelope(sqlite: Deployment, tmp_path: Path) -> None:
    sqlite.run("tenants", "provision", "a")
    report = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["--config", str(sqlite.config), "migrate", "stamp",
                                       "head", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert json_data(report.read_text(), "migrate stamp")["tenants"][0]["tenant"] == "a"


def test_schema_rejects_drift() -> None:
    """The schemas are strict: an extra key or a tenant_id in data is refused."""
    dropped = {"tenant": "a", "location": "x", "action": "dropped", "rows": 0,
               "safety_backup": None, "backup_into": None, "role": None, "error": None}
    good = {"command": "tenants drop", "ok": True, "problems": [], "error": None,
            "data": {"dry_run": False, "needs_yes": False, "tenants": [dropped]}}
    envelope(json.dumps(good))
    for bad in ({**good, "data": {**good["data"], "tenants": [{**dropped, "tenant_id": "a"}]}},
                {**good, "ok": True, "error": "boom"},
                {**good, "extra": 1},
                {**good, "problems": [{"message": "x"}]}):
        with pytest.raises(AssertionError):
            envelope(json.dumps(bad))
