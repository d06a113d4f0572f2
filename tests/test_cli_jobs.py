"""-j/--jobs on the walkers whose per-tenant work is independent: verify-isolation (its
per-tenant checks) and backup verify (one archive each). -j 4 answers exactly as -j 1;
-j 0 and -j 65 are refused. Real PostgreSQL and SQLite files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from json_support import json_data

from docex_ops.cli import main

TENANTS = [f"j{i}" for i in range(6)]


def _run(config_file: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config_file), *args])


def _data(config_file: Path, command: str, *args: str) -> dict[str, Any]:
    result = _run(config_file, "--format", "json", *command.split(), *args)
    assert result.exit_code == 0, result.output
    return dict(json_data(result.stdout, command))


def test_verify_isolation_same_answer_with_4_jobs(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", *TENANTS).exit_code == 0
    serial = _data(config_file, "verify-isolation", "-j", "1")
    parallel = _data(config_file, "verify-isolation", "--jobs", "4")
    for data in (serial, parallel):
        data.pop("seconds")
    assert parallel == serial
    per_tenant = {r["tenant"] for r in serial["results"]
                  if r["check"] in ("routing", "integrity", "contents")}
    assert per_tenant >= set(TENANTS)  # the checks that -j spreads saw every tenant
    assert serial["tenants_checked"] == len(TENANTS)


def test_backup_verify_same_answer_with_4_jobs(config_file: Path, tmp_path: Path) -> None:
    assert _run(config_file, "tenants", "provision", *TENANTS).exit_code == 0
    dest = tmp_path / "bk"
    created = _run(config_file, "backup", "create", "--all", "--dest", str(dest),
                   "--batch-size", "1")
    assert created.exit_code == 0, created.output
    # One archive damaged: the failure is the same whatever the order the workers take.
    archive = next(p for p in sorted(dest.iterdir())
                   if p.name.startswith("j3.") and not p.name.endswith(".json"))
    archive.write_bytes(archive.read_bytes() + b"x")
    runs = []
    for jobs in ("1", "4"):
        result = _run(config_file, "--format", "json", "backup", "verify", str(dest),
                      "--restore-check", "-j", jobs)
        assert result.exit_code == 1, result.output
        runs.append(json.loads(result.stdout))
    serial, parallel = runs
    assert parallel == serial
    statuses = {a["tenant"]: a["status"] for a in serial["data"]["archives"]}
    assert statuses == {**{t: "ok" for t in TENANTS}, "j3": "FAILED"}
    assert all(a["restore_check"] for a in serial["data"]["archives"] if a["tenant"] != "j3")


@pytest.mark.parametrize("jobs", ["0", "65"])
@pytest.mark.parametrize("command", [("verify-isolation",), ("backup", "verify", ".")])
def test_jobs_out_of_range_refused(config_file: Path, jobs: str,
                                   command: tuple[str, ...]) -> None:
    result = _run(config_file, *command, "-j", jobs)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "1<=x<=64" in result.output
