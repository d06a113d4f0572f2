"""`docex-ops metrics`: the exposition parsed back with prometheus_client and checked
against the fleet (real PostgreSQL and SQLite files), the textfile and its refusals."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from json_support import json_data
from migration_helpers import HEAD, cli, cli_json, scripts_with
from prometheus_client.parser import text_string_to_metric_families

from docex_ops.cli import main

UNIQUE_NAMES = {"0004_unique_names": 'op.create_index("uq_document_name", "document", '
                                     '["name"], unique=True)  # fast'
                                     '  # lint: allow index-not-concurrent: fails on purpose'}


def scrape(config: Path, *args: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """metric sample name -> {sorted labels: value}; every family has HELP and TYPE."""
    result = CliRunner().invoke(main, ["--config", str(config), "metrics", *args])
    assert result.exit_code == 0, result.output
    return parse(result.stdout)


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
    types = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    families = list(text_string_to_metric_families(text))
    assert len(helps) == len(types) == len(families) > 10
    for family in families:
        assert family.name.startswith("docex_ops_") and family.documentation, family.name
        assert family.type in ("gauge", "counter"), family.name
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return found


def one(found: dict[str, Any], name: str, **labels: str) -> float:
    return float(found[name][tuple(sorted(labels.items()))])


def test_a_tenant_downgraded_behind_head_shows_in_its_series(config_file: Path) -> None:
    assert cli(config_file, "tenants", "provision", "t1", "t2", "t3")[0] == 0
    code, output = cli(config_file, "migrate", "downgrade", "-1", "--tenant", "t2", "--force")
    assert code == 0, output
    found = scrape(config_file)
    assert one(found, "docex_ops_head_info", revision=HEAD) == 1
    assert one(found, "docex_ops_tenants", server="default", state="current") == 2
    assert one(found, "docex_ops_tenants", server="default", state="behind") == 1
    assert one(found, "docex_ops_tenants_behind_head", server="default") == 1
    assert one(found, "docex_ops_tenant_revisions_behind", server="default", tenant="t2") == 1
    assert one(found, "docex_ops_tenant_revisions_behind", server="default", tenant="t1") == 0
    assert one(found, "docex_ops_tenants_by_revision", server="default",
               revision="0002_docex_2_9_9") == 1
    assert one(found, "docex_ops_tenants_by_revision", server="default", revision=HEAD) == 2
    assert all(one(found, "docex_ops_tenant_size_bytes", server="default", tenant=t) > 0
               for t in ("t1", "t2", "t3"))
    assert one(found, "docex_ops_migration_run_tenants", status="done") == 1
    assert one(found, "docex_ops_snapshot_problems") == 0
    # Upgraded again: no tenant is behind, the series says 0 rather than going stale.
    assert cli(config_file, "migrate", "upgrade")[0] == 0
    again = scrape(config_file)
    assert one(again, "docex_ops_tenant_revisions_behind", server="default", tenant="t2") == 0
    assert "docex_ops_tenants_behind_head" not in again


def test_failed_tenant_of_a_failed_run_shows(config_file: Path, tmp_path: Path,
                                             manager: Any) -> None:
    from test_migrate_runner import add_document

    assert cli(config_file, "tenants", "provision", "t1", "t2", "t3")[0] == 0
    add_document(manager, "t2", "same")
    add_document(manager, "t2", "same")
    manager.close_all_connections()
    scripts = str(scripts_with(tmp_path, UNIQUE_NAMES))
    code, report = cli_json(config_file, "migrate", "--scripts", scripts, "upgrade",
                            "--continue-on-error")
    assert code == 1
    found = scrape(config_file)
    assert one(found, "docex_ops_migration_run_info", run_id=report["run_id"],
               action="upgrade", target="head", status="failed") == 1
    assert one(found, "docex_ops_migration_run_failed_tenant", tenant="t2") == 1
    assert set(found["docex_ops_migration_run_failed_tenant"]) == {(("tenant", "t2"),)}
    assert one(found, "docex_ops_migration_run_tenants", status="failed") == 1
    assert one(found, "docex_ops_migration_run_tenants", status="done") == 2
    started = one(found, "docex_ops_migration_run_start_timestamp_seconds")
    assert abs(started - time.time()) < 120
    assert 0 <= one(found, "docex_ops_migration_run_duration_seconds") < 120


def test_a_stale_backup_shows_its_age(config_file: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    assert cli(config_file, "tenants", "provision", "t1", "t2")[0] == 0
    assert cli(config_file, "backup", "create", "--all", "--dest", str(backups))[0] == 0
    assert cli(config_file, "tenants", "provision", "t3")[0] == 0  # never backed up
    manifests = {json.loads(p.read_text())["tenant_id"]: json.loads(p.read_text())
                 for p in backups.glob("*.manifest.json")}
    time.sleep(1.2)
    found = scrape(config_file, "--backups", str(backups), "--stale-after", "1s")
    taken = one(found, "docex_ops_snapshot_timestamp_seconds")
    for tenant in ("t1", "t2"):
        finished = datetime.fromisoformat(manifests[tenant]["finished_at"]).timestamp()
        age = one(found, "docex_ops_tenant_backup_age_seconds", tenant=tenant)
        assert age > 1.0 and abs(age - (taken - finished)) < 0.01
        assert one(found, "docex_ops_tenant_last_backup_timestamp_seconds",
                   tenant=tenant) == pytest.approx(finished)
    assert (("tenant", "t3"),) not in found["docex_ops_tenant_backup_age_seconds"]
    assert one(found, "docex_ops_tenants_without_verified_backup") == 1
    assert one(found, "docex_ops_tenants_with_stale_backup") == 3  # t1, t2 stale; t3 none
    fresh = scrape(config_file, "--backups", str(backups))  # the default: a day
    assert one(fresh, "docex_ops_tenants_with_stale_backup") == 1
    # An archive replaced after its manifest no longer counts as verified.
    archive = backups / manifests["t1"]["archive"]
    archive.write_bytes(archive.read_bytes()[:-1] + b"\0")
    os.utime(archive, (time.time() + 60, time.time() + 60))
    damaged = scrape(config_file, "--backups", str(backups))
    assert one(damaged, "docex_ops_tenants_without_verified_backup") >= 2


def test_json_is_the_envelope_with_the_same_numbers(config_file: Path) -> None:
    assert cli(config_file, "tenants", "provision", "t1")[0] == 0
    result = CliRunner().invoke(main, ["--config", str(config_file), "--format", "json",
                                       "metrics"])
    assert result.exit_code == 0, result.output
    data = json_data(result.stdout, "metrics")
    by_name = {m["name"]: m for m in data["metrics"]}
    samples = by_name["docex_ops_tenants"]["samples"]
    assert samples == [{"name": "docex_ops_tenants", "labels": {"server": "default",
                                                                "state": "current"},
                        "value": 1.0}]
    assert data["textfile"] is None and data["seconds"] > 0


def test_textfile_is_replaced_atomically(config_file: Path, tmp_path: Path) -> None:
    assert cli(config_file, "tenants", "provision", "t1")[0] == 0
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "docex_ops.prom"
    target.write_text("# old\n")
    old = target.open()  # held open: its inode cannot be reused for the new file
    seen: list[str] = []
    stop = threading.Event()

    def read_while_writing() -> None:  # what node_exporter would read meanwhile
        while not stop.is_set():
            seen.append(target.read_text())

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        for _ in range(3):
            code, output = cli(config_file, "metrics", "--textfile", str(folder))
            assert code == 0, output
    finally:
        stop.set()
        reader.join()
    with old:  # renamed over, never rewritten in place
        assert os.fstat(old.fileno()).st_ino != target.stat().st_ino
        assert old.read() == "# old\n"
    assert os.listdir(folder) == ["docex_ops.prom"]  # no temp file left behind
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    parsed = parse(target.read_text())
    assert one(parsed, "docex_ops_tenants", server="default", state="current") == 1
    # Every read saw the old file or a whole new one, never a part.
    assert all(text == "# old\n" or text.rstrip().endswith("docex_ops_snapshot_problems 0.0")
               for text in seen), [t[-80:] for t in seen if not t.endswith("\n")][:3]


def test_symlinks_and_non_folders_are_refused(config_file: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    for option, path in (("--textfile", link), ("--textfile", plain),
                         ("--backups", link), ("--backups", tmp_path / "missing")):
        code, output = cli(config_file, "metrics", option, str(path))
        assert code == 2, (option, path, output)
        assert option in output and "Traceback" not in output
    assert os.listdir(real) == []


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(main, ["metrics", "--help"])
    assert result.exit_code == 0
    assert "docex-ops metrics --textfile" in result.output
    assert "docex-ops metrics serve --listen" in result.output


def test_several_servers_label_each_tenant_with_its_own(fleet_config_file: Path) -> None:
    assert cli(fleet_config_file, "tenants", "provision", "alpha", "--server", "c")[0] == 0
    assert cli(fleet_config_file, "tenants", "provision", "beta", "--server", "b")[0] == 0
    code, output = cli(fleet_config_file, "migrate", "downgrade", "-1", "--tenant", "beta",
                       "--force")
    assert code == 0, output
    found = scrape(fleet_config_file)
    assert one(found, "docex_ops_tenants", server="c", state="current") == 1
    assert one(found, "docex_ops_tenants", server="b", state="behind") == 1
    assert one(found, "docex_ops_tenant_revisions_behind", server="b", tenant="beta") == 1
    assert one(found, "docex_ops_tenant_size_bytes", server="c", tenant="alpha") > 0
    servers = {dict(labels)["server"] for labels in found["docex_ops_server_max_connections"]}
    assert servers == {"main", "b", "c"}
    assert one(found, "docex_ops_snapshot_problems") == 0


def test_unreadable_manifests_are_problems_not_a_failed_scrape(config_file: Path,
                                                               tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "evil.manifest.json").write_text(json.dumps({"tenant_id": "../../etc",
                                                            "tables": {}, "format": 1}))
    (backups / "junk.manifest.json").write_text("{not json")
    assert cli(config_file, "tenants", "provision", "t1")[0] == 0
    result = CliRunner().invoke(main, ["--config", str(config_file), "--format", "json",
                                       "metrics", "--backups", str(backups)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    messages = [p["message"] for p in document["problems"]]
    assert len(messages) == 2 and any("junk.manifest.json" in m for m in messages)
    data = json_data(result.stdout, "metrics")
    by_name = {m["name"]: m["samples"] for m in data["metrics"]}
    assert by_name["docex_ops_snapshot_problems"][0]["value"] == 2
    assert by_name["docex_ops_tenants_without_verified_backup"][0]["value"] == 1
    tenants = {s["labels"].get("tenant") for samples in by_name.values() for s in samples}
    assert tenants <= {None, "t1"}  # the hostile manifest names no series


@pytest.mark.parametrize("kind", ["sqlite"])  # the signature is the same on each kind
def test_with_a_signing_key_only_signed_copies_are_verified(config_file: Path,
                                                            tmp_path: Path) -> None:
    import yaml

    key = tmp_path / "backup.key"
    key.write_text("k" * 64)
    key.chmod(0o600)
    raw = yaml.safe_load(config_file.read_text())
    raw["backup"] = {"signing_key_file": str(key)}
    signed = tmp_path / "signed.yaml"
    signed.write_text(yaml.safe_dump(raw))
    backups = tmp_path / "backups"
    assert cli(config_file, "tenants", "provision", "t1", "t2")[0] == 0
    assert cli(config_file, "backup", "create", "--tenant", "t1", "--dest", str(backups))[0] == 0
    assert cli(signed, "backup", "create", "--tenant", "t2", "--dest", str(backups))[0] == 0
    found = scrape(signed, "--backups", str(backups))
    assert set(found["docex_ops_tenant_backup_age_seconds"]) == {(("tenant", "t2"),)}
    assert one(found, "docex_ops_tenants_without_verified_backup") == 1  # t1: unsigned
    unsigned = scrape(config_file, "--backups", str(backups))  # no key: both count
    assert one(unsigned, "docex_ops_tenants_without_verified_backup") == 0
    key.chmod(0o644)  # a key others can read is refused, in one line, before any scrape
    code, output = cli(signed, "metrics", "--backups", str(backups))
    assert code == 2 and "signing_key_file" in output and "Traceback" not in output
