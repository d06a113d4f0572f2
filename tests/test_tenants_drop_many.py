"""`tenants drop ID... --yes`: several tenants, each in its own transaction with its own
safety backup; one refusal does not stop the others; --dry-run takes the same path and
says the same per tenant. Real PostgreSQL and SQLite files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from docs_support import add_basket_row, with_files, write_config
from json_support import json_data

from docex_ops.cli import main
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager


@pytest.fixture
def config(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """A config whose audit trail lives in tmp_path."""
    path = write_config(with_files(settings, tmp_path), tmp_path / "config.yaml")
    yield path
    TenantDatabaseManager.reset()


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def _listed(config: Path) -> list[str]:
    result = _run(config, "--format", "json", "tenants", "list")
    return [t["tenant"] for t in json_data(result.stdout)["tenants"]]


def _audit(tmp_path: Path) -> list[tuple[object, object]]:
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    return [(x["tenant"], x["outcome"]) for x in lines if x["action"] == "tenant.drop"]


def test_one_refusal_does_not_stop_the_others(config: Path, tmp_path: Path) -> None:
    assert _run(config, "tenants", "provision", "a", "full", "b", "keep").exit_code == 0
    add_basket_row(config, "full")
    result = _run(config, "--format", "json", "tenants", "drop", "a", "full", "b", "--yes")
    assert result.exit_code == 1, result.output
    data = json_data(result.stdout, "tenants drop")
    assert [(t["tenant"], t["action"]) for t in data["tenants"]] == [
        ("a", "dropped"), ("full", "refused"), ("b", "dropped")]
    refused = data["tenants"][1]
    assert "holds rows (docbasket 1 row)" in refused["error"] and refused["rows"] is None
    envelope = json.loads(result.stdout)
    assert envelope["ok"] is False and "full" in envelope["error"]
    assert [p["tenant"] for p in envelope["problems"]] == ["full"]
    assert _listed(config) == ["full", "keep"]
    assert _audit(tmp_path) == [("a", "ok"), ("full", "refused"), ("b", "ok")]
    assert "tenants drop: 3 tenants, 2 ok, 1 failed" in result.stderr


def test_force_backs_each_tenant_up_on_its_own(config: Path, tmp_path: Path) -> None:
    assert _run(config, "tenants", "provision", "x1", "x2", "empty").exit_code == 0
    add_basket_row(config, "x1")
    add_basket_row(config, "x2")
    safety = tmp_path / "safety"
    result = _run(config, "tenants", "drop", "x1", "x2", "empty", "--yes", "--force",
                  "--safety-dir", str(safety))
    assert result.exit_code == 0, result.output
    for tenant in ("x1", "x2"):
        assert len(list(safety.glob(f"{tenant}.*"))) >= 1, sorted(safety.iterdir())
        assert f"tenant {tenant} held 1 rows; backed it up first to {safety}" in result.output
    assert not list(safety.glob("empty.*"))  # nothing to keep: no backup
    # The table: one row per tenant, each dropped.
    table = [line.split() for line in result.stdout.splitlines()]
    assert [row[0] for row in table if row and row[0] in ("x1", "x2", "empty")] == [
        "x1", "x2", "empty"]
    assert result.stdout.count("dropped") >= 3
    assert _listed(config) == []
    assert _audit(tmp_path) == [("x1", "ok"), ("x2", "ok"), ("empty", "ok")]


def test_dry_run_says_per_tenant_what_the_run_does(config: Path, tmp_path: Path) -> None:
    assert _run(config, "tenants", "provision", "a", "full", "b").exit_code == 0
    add_basket_row(config, "full")
    args = ("tenants", "drop", "a", "full", "b")
    dry = _run(config, "--format", "json", *args, "--dry-run")
    assert dry.exit_code == 1, dry.output
    planned = json_data(dry.stdout, "tenants drop")
    assert planned["dry_run"] is True and planned["needs_yes"] is True
    assert [(t["tenant"], t["action"]) for t in planned["tenants"]] == [
        ("a", "would drop"), ("full", "refused"), ("b", "would drop")]
    assert _listed(config) == ["a", "b", "full"]  # a dry run drops nothing
    assert not (tmp_path / "audit.jsonl").exists() or _audit(tmp_path) == []
    real = _run(config, "--format", "json", *args, "--yes")
    assert real.exit_code == dry.exit_code
    done = json_data(real.stdout, "tenants drop")
    assert [(t["tenant"], t["error"]) for t in done["tenants"]] == [
        (t["tenant"], t["error"]) for t in planned["tenants"]]
    # With --force the dry run names the rows and where the backup would go.
    forced = _run(config, "tenants", "drop", "full", "--dry-run", "--force",
                  "--safety-dir", str(tmp_path / "s"))
    assert forced.exit_code == 0, forced.output
    assert "would drop" in forced.stdout and str(tmp_path / "s") in forced.stdout
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("hostile", ['x"; drop schema public--', "../../etc", "public"])
def test_hostile_ids_refused_before_anything(config: Path, hostile: str) -> None:
    assert _run(config, "tenants", "provision", "good").exit_code == 0
    for args in (("good", hostile, "--yes"), ("good", hostile, "--dry-run"),
                 ("good", "--exclude", hostile, "--yes")):
        result = _run(config, "tenants", "drop", *args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "tenant id" in result.output and len(result.output.strip().splitlines()) == 1
    assert _listed(config) == ["good"]


def test_tenants_file_exclude_and_unknown(config: Path, tmp_path: Path) -> None:
    assert _run(config, "tenants", "provision", "a", "b", "c", "d").exit_code == 0
    listing = tmp_path / "drop.txt"
    listing.write_text("# to go\nb\nc  # old\n")
    unknown = _run(config, "tenants", "drop", "a", "nosuch", "--tenants-file", str(listing),
                   "--yes")
    assert unknown.exit_code == 2 and "nosuch" in unknown.output
    assert _listed(config) == ["a", "b", "c", "d"]  # a typo in the list drops nothing
    for args in (("--yes",), ()):
        nothing = _run(config, "tenants", "drop", *args)
        assert nothing.exit_code == 2 and "nothing to drop" in nothing.output, nothing.output
    result = _run(config, "--format", "json", "tenants", "drop", "a", "--tenants-file",
                  str(listing), "--exclude", "c", "--yes")
    assert result.exit_code == 0, result.output
    assert [t["tenant"] for t in json_data(result.stdout)["tenants"]] == ["a", "b"]
    assert _listed(config) == ["c", "d"]
    all_out = _run(config, "tenants", "drop", "c", "--exclude", "c", "--yes")
    assert all_out.exit_code == 2 and "nothing to drop" in all_out.output


def test_jobs_drop_at_once_and_report_in_list_order(config: Path, tmp_path: Path) -> None:
    ids = ["d1", "d2", "full", "d3"]
    assert _run(config, "tenants", "provision", *ids, "keep").exit_code == 0
    add_basket_row(config, "full")
    result = _run(config, "--format", "json", "tenants", "drop", *ids, "--yes", "--force",
                  "--safety-dir", str(tmp_path / "safety"), "-j", "3")
    assert result.exit_code == 0, result.output
    rows = json_data(result.stdout)["tenants"]
    assert [r["tenant"] for r in rows] == ids and {r["action"] for r in rows} == {"dropped"}
    assert [r["tenant"] for r in rows if r["safety_backup"]] == ["full"]
    assert _listed(config) == ["keep"]
    assert sorted(_audit(tmp_path)) == sorted((t, "ok") for t in ids)
    assert _run(config, "tenants", "drop", "keep", "--yes", "-j", "0").exit_code == 2
