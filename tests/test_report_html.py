"""`docex-ops report --html` on a real fleet, opened in real headless Chromium: the planted
facts (a failed tenant, a stale backup, a tenant behind head) are in the rendered text,
with JavaScript on or off, screenshots are drawn at desktop and phone widths, and loading
the page makes no network request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chromium_support import (
    chromium,
    dump_dom,
    load_without_scripts,
    page_requests,
    page_width,
    png_facts,
    screenshot,
    section_texts,
)
from click.testing import CliRunner
from json_support import envelope
from migration_helpers import cli, scripts_with
from report_html_support import network_references

from docex_ops.backup.manifest import MANIFEST_SUFFIX
from docex_ops.cli import main
from docex_ops.manager.tenant_manager import TenantDatabaseManager

UNIQUE_NAMES = {"0004_unique_names": 'op.create_index("uq_document_name", "document", '
                                     '["name"], unique=True)  # fast'
                                     '  # lint: allow index-not-concurrent: fails on purpose'}


def _report(config_file: Path, *args: str, code: int = 0) -> dict[str, object]:
    result = CliRunner().invoke(main, ["--config", str(config_file), "--format", "json",
                                       "report", *args])
    assert result.exit_code == code, result.output
    return envelope(result.stdout, "report")


def _plant(manager: TenantDatabaseManager, config_file: Path, tmp_path: Path) -> Path:
    """acme (stale backup), globex (failed the last run), initech (behind head), and a
    recorded isolation audit."""
    from test_migrate_runner import add_document

    for tenant in ("acme", "globex", "initech"):
        manager.provision(tenant)
    add_document(manager, "globex", "same")
    add_document(manager, "globex", "same")
    manager.close_all_connections()
    backups = tmp_path / "backups"
    code, out = cli(config_file, "backup", "create", "--all", "--dest", str(backups))
    assert code == 0, out
    # acme's only copy was finished three days ago: stale for --stale-after 1d.
    (manifest,) = [p for p in backups.rglob("*" + MANIFEST_SUFFIX) if "acme" in p.name]
    data = json.loads(manifest.read_text())
    data["finished_at"] = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    manifest.write_text(json.dumps(data))
    code, out = cli(config_file, "migrate", "downgrade", "0002_docex_2_9_9", "--force",
                    "--tenant", "initech", "--safety-dir", str(tmp_path / "safety"))
    assert code == 0, out
    code, out = cli(config_file, "migrate", "--scripts", str(scripts_with(tmp_path,
                    UNIQUE_NAMES)), "upgrade", "--tenant", "globex")
    assert code == 1, out  # the duplicate names break the unique index: globex failed
    code, out = cli(config_file, "verify-isolation", "--record")
    assert code in (0, 1), out  # recorded, whatever it found
    return backups


def test_report_in_headless_chromium(manager: TenantDatabaseManager, config_file: Path,
                                     tmp_path: Path) -> None:
    backups = _plant(manager, config_file, tmp_path)
    page = tmp_path / "fleet.html"
    data = _report(config_file, "--html", str(page), "--backups", str(backups),
                   "--stale-after", "1d")["data"]
    assert isinstance(data, dict) and data["file"] == str(page.resolve())
    assert data["bytes"] == page.stat().st_size
    counts = dict(data["counts"])
    assert isinstance(counts.pop("isolation_fail"), int)  # recorded: a number, maybe 0
    assert counts == {"tenants": 3, "behind": 1, "failed_in_last_run": 1,
                      "stale_backups": 1, "without_verified_backup": 0}
    html = page.read_text()
    assert network_references(html) == [] and "<script" not in html

    dom = dump_dom(page, tmp_path)
    text = section_texts(dom)
    assert "FAIL last run" in text["summary"]
    assert "globex" in text["runs"] and "failed" in text["runs"]
    failures = text["runs"].split("Failed tenants in run")[1]
    assert "globex" in failures and "unique" in failures.lower()
    stale = text["backups"].split("Stale backups")[1].split("Tenants without")[0]
    assert "acme" in stale and "3.0 d" in stale and "globex" not in stale
    assert "initech" in text["behind"] and "0002_docex_2_9_9" in text["behind"]
    assert "acme" in text["sizes"]
    assert "Recorded" in text["isolation"] and "check status results" in text["isolation"]
    no_script, requested = load_without_scripts(page, tmp_path)
    assert section_texts(no_script) == text  # the same page with JavaScript off
    assert requested == [page.resolve().as_uri()]  # the page itself, nothing else

    assert page_width(page, tmp_path, 390) <= 390  # tables scroll in their box, not the page
    for width in (1280, 390):
        shot = screenshot(page, tmp_path, width, 2000)
        got_width, got_height, distinct = png_facts(shot)
        assert (got_width, got_height) == (width, 2000)
        assert distinct > 32, f"{shot} looks blank ({distinct} distinct byte values)"

    printed = tmp_path / "printed.pdf"  # the print stylesheet's way onto paper
    chromium(page, tmp_path, f"--print-to-pdf={printed}", "--no-pdf-header-footer")
    assert printed.read_bytes()[:5] == b"%PDF-" and printed.stat().st_size > 10_000

    requests, logged = page_requests(page, tmp_path)
    assert requests == [] and logged > 0  # the log was written; the page asked nothing


def test_the_browser_probes_see_what_they_look_for(tmp_path: Path) -> None:
    """The checks above would catch a bad page: the same probes on one that fetches (an
    image and a stylesheet on the network, nothing listening) and is too wide for a phone."""
    page = tmp_path / "fetches.html"
    page.write_text('<!DOCTYPE html><html lang="en"><title>x</title><img alt="" '
                    'src="http://127.0.0.1:9/x.png"><link rel="stylesheet" '
                    'href="https://example.invalid/a.css"><div style="width:900px">wide</div>'
                    '</html>')
    assert page_width(page, tmp_path, 390) > 390
    assert len(network_references(page.read_text())) == 2
    requests, _ = page_requests(page, tmp_path)
    assert sorted(requests) == ["http://127.0.0.1:9/x.png", "https://example.invalid/a.css"]
    _, requested = load_without_scripts(page, tmp_path)
    assert "http://127.0.0.1:9/x.png" in requested


@pytest.mark.parametrize("kind", ["sqlite"])
def test_report_refuses_symlinks_and_folders_and_writes_stdout(
        manager: TenantDatabaseManager, config_file: Path, tmp_path: Path) -> None:
    manager.provision("acme")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.html"
    link.symlink_to(victim)
    refused = _report(config_file, "--html", str(link), code=2)
    assert "symlink" in str(refused["error"]) and victim.read_text() == "keep me"
    folder = _report(config_file, "--html", str(tmp_path), code=2)
    assert "is a directory" in str(folder["error"])
    device = _report(config_file, "--html", "/dev/null", code=2)
    assert "not a regular file" in str(device["error"]) and Path("/dev/null").is_char_device()
    missing = _report(config_file, "--html", str(tmp_path / "no" / "x.html"), code=2)
    assert "does not exist" in str(missing["error"])
    both = _report(config_file, "--html", "-", code=2)
    assert "stdout" in str(both["error"])
    out = CliRunner().invoke(main, ["--config", str(config_file), "report", "--html", "-"])
    assert out.exit_code == 0 and out.stdout.startswith("<!DOCTYPE html>")
    assert "acme" in out.stdout and out.stdout.rstrip().endswith("</html>")
    # replaced whole, never appended to, and no temp file left beside it
    page = tmp_path / "page.html"
    page.write_text("old")
    page.chmod(0o600)  # a page that holds tenant ids, kept private by its owner
    assert _report(config_file, "--html", str(page))["ok"] is True
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert page.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.glob(".page.html.*")) == []


def test_report_help_has_an_example() -> None:
    out = CliRunner().invoke(main, ["report", "--help"])
    assert out.exit_code == 0
    assert "docex-ops report --html fleet.html --backups" in out.output
    assert "--stale-after" in out.output and "stdout" in out.output


def test_report_on_several_servers_shows_each_server(fleet_manager: TenantDatabaseManager,
                                                     fleet_config_file: Path,
                                                     tmp_path: Path) -> None:
    """Three servers: each has its own revision chart and its own connection meter, and
    the tenant behind head is named with its server."""
    ids = [f"f{n}" for n in range(6)]
    assert cli(fleet_config_file, "tenants", "provision", *ids)[0] == 0
    code, out = cli(fleet_config_file, "migrate", "downgrade", "0002_docex_2_9_9", "--force",
                    "--tenant", "f0", "--safety-dir", str(tmp_path / "safety"))
    assert code == 0, out
    page = tmp_path / "fleet.html"
    data = _report(fleet_config_file, "--html", str(page))["data"]
    assert isinstance(data, dict) and data["counts"]["behind"] == 1
    text = section_texts(page.read_text())
    for server in ("main", "b", "c"):
        assert f"Tenants per revision on {server}" in page.read_text()
        assert f"Client connections on {server}" in page.read_text()
    server_of_f0 = fleet_manager.server_of("f0")
    assert f"f0 {server_of_f0} 0002_docex_2_9_9 1" in text["behind"]
