"""Progress: a rich bar on a terminal (a real pseudo-terminal), one summary line otherwise.

The CLI runs as a subprocess whose stderr is the slave side of a pty (python's ``pty``
module), so rich sees a terminal exactly as an operator's shell gives it one.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docs_support import with_files, write_config

from docex_ops.config.settings import Settings

TENANTS = [f"p{i:02d}" for i in range(6)]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = "\u2501"  # rich's bar glyph
SUMMARY = re.compile(r"^(?P<command>[a-z -]+): (?P<total>\d+) (?P<noun>tenants|archives|checks), "
                     r"(?P<ok>\d+) ok, (?P<failed>\d+) failed in \d+\.\ds$")


@pytest.fixture
def config(settings_factory: Any, tmp_path: Path) -> Path:
    """SQLite tenants (the bar is the CLI's, the same for every kind) and an audit file."""
    settings: Settings = settings_factory("sqlite")
    return write_config(with_files(settings, tmp_path), tmp_path / "config.yaml")


def _command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "docex_ops.cli", "--config", str(config), *args]


def _on_a_terminal(config: Path, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, everything the terminal showed on stderr, ANSI removed)."""
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="160", LINES="40", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(_command(config, *args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the slave side closed: the process is gone
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.wait(timeout=60)
    return proc.returncode, out, ANSI.sub("", shown.decode("utf-8", "replace"))


def _piped(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(config, *args), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def test_a_terminal_shows_a_bar_with_count_and_tenant(config: Path) -> None:
    code, _, shown = _on_a_terminal(config, "tenants", "provision", *TENANTS)
    assert code == 0, shown
    assert BAR in shown and "tenants provision" in shown
    assert f"{len(TENANTS)}/{len(TENANTS)}" in shown
    assert TENANTS[-1] in shown and "tenants/s" in shown
    assert shown.rstrip().splitlines()[-1].strip().startswith(
        f"tenants provision: {len(TENANTS)} tenants, {len(TENANTS)} ok, 0 failed in ")


def test_backup_create_counts_out_of_the_selection(config: Path, tmp_path: Path) -> None:
    assert _piped(config, "tenants", "provision", *TENANTS).returncode == 0
    code, _, shown = _on_a_terminal(config, "backup", "create", "--all", "--dest",
                                    str(tmp_path / "bk"), "--batch-size", "1")
    assert code == 0, shown
    total = len(TENANTS)
    counts = set(re.findall(r"(\d+)/(\d+)", shown))
    assert counts and {t for _, t in counts} == {str(total)}, counts  # never 1/1, 2/2, ...
    assert (str(total), str(total)) in counts


def test_restore_check_shows_progress_per_archive(config: Path, tmp_path: Path) -> None:
    assert _piped(config, "tenants", "provision", *TENANTS[:3]).returncode == 0
    assert _piped(config, "backup", "create", "--all", "--dest", str(tmp_path / "bk"),
                  "--batch-size", "1").returncode == 0
    code, _, shown = _on_a_terminal(config, "backup", "verify", str(tmp_path / "bk"),
                                    "--restore-check")
    assert code == 0, shown
    assert BAR in shown and "3/3" in shown and "archives/s" in shown
    assert TENANTS[2] in shown


def test_not_a_terminal_only_the_summary_line(config: Path) -> None:
    result = _piped(config, "tenants", "provision", *TENANTS)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # no bar, no audit lines (they go to the file)
    match = SUMMARY.match(lines[0])
    assert match is not None, lines
    assert match.groupdict() | {} == {"command": "tenants provision", "total": "6",
                                      "noun": "tenants", "ok": "6", "failed": "0"}
    assert "\r" not in result.stderr and BAR not in result.stderr


def test_quiet_on_a_terminal_shows_no_bar(config: Path) -> None:
    code, _, shown = _on_a_terminal(config, "-q", "tenants", "provision", *TENANTS)
    assert code == 0, shown
    assert BAR not in shown and "/6" not in shown and shown.strip() == ""


def test_quiet_keeps_the_summary_of_failures_and_audit_lines(config: Path,
                                                              tmp_path: Path) -> None:
    """A tenant whose file cannot be created fails: -q still says so, and --audit-stderr
    still prints the audit lines."""
    blocker = tmp_path / "storage" / "tenant_p99"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the tenant's folder should be")
    result = _piped(config, "-q", "--audit-stderr", "tenants", "provision", "p98", "p99")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    audited = [line for line in lines if line.startswith('{"time"')]
    assert len(audited) == 2 and '"outcome":"failed"' in audited[1], lines
    summaries = [m.groupdict() for line in lines if (m := SUMMARY.match(line))]
    assert summaries == [{"command": "tenants provision", "total": "2", "noun": "tenants",
                          "ok": "1", "failed": "1"}], lines


def test_audit_lines_print_above_the_bar(config: Path) -> None:
    code, _, shown = _on_a_terminal(config, "--audit-stderr", "tenants", "provision",
                                    *TENANTS)
    assert code == 0, shown
    audit_lines = [line for line in shown.splitlines() if '"action"' in line]
    assert len(audit_lines) == len(TENANTS)
    for line in audit_lines:  # each one whole, on a line of its own: never mid-bar
        assert line.strip().startswith('{"time"') and line.strip().endswith("}"), line
        assert BAR not in line


def test_verify_isolation_shows_progress_per_check(config: Path) -> None:
    assert _piped(config, "tenants", "provision", *TENANTS[:2]).returncode == 0
    code, out, shown = _on_a_terminal(config, "--format", "json", "verify-isolation")
    assert code == 0, shown
    checks = json.loads(out)["data"]["checks"]
    total = len({c["check"] for c in checks})
    assert BAR in shown and f"{total}/{total}" in shown and "checks/s" in shown
    piped = _piped(config, "verify-isolation")
    summaries = [m.groupdict() for line in piped.stderr.splitlines()
                 if (m := SUMMARY.match(line))]
    assert summaries == [{"command": "verify-isolation", "total": str(total),
                          "noun": "checks", "ok": str(total), "failed": "0"}], piped.stderr


def test_log_lines_print_above_the_bar(config: Path) -> None:
    """-v logs (here the audit logger's INFO lines) go through the bar's console too."""
    code, _, shown = _on_a_terminal(config, "-v", "tenants", "provision", *TENANTS)
    assert code == 0, shown
    logged = [line for line in shown.splitlines() if "INFO docex_ops.audit" in line]
    assert len(logged) == len(TENANTS), shown
    assert all(BAR not in line and line.index("INFO") < 40 for line in logged), logged


def test_rich_is_loaded_only_for_a_bar(config: Path) -> None:
    """A run in CI or cron (no terminal) never imports rich: start-up stays small."""
    code = ("import sys\nfrom docex_ops.cli import main\n"
            f"main(['--config', {str(config)!r}, 'tenants', 'provision', 'r1'],"
            " standalone_mode=False)\nprint('rich' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False"
    assert SUMMARY.match(result.stderr.splitlines()[-1])


def test_migrate_counts_over_canary_and_waves(config: Path) -> None:
    """One count for the whole plan: the canary and each wave continue it."""
    assert _piped(config, "tenants", "provision", *TENANTS).returncode == 0
    down = _piped(config, "migrate", "downgrade", "0002_docex_2_9_9", "--force")
    assert down.returncode == 0, down.stderr
    code, _, shown = _on_a_terminal(config, "migrate", "upgrade", "--canary", "1",
                                    "--waves", "50%")
    assert code == 0, shown
    counts = set(re.findall(r"(\d+)/(\d+)", shown))
    assert {t for _, t in counts} == {str(len(TENANTS))}, counts
    assert (str(len(TENANTS)), str(len(TENANTS))) in counts
    # Its own run line is the summary: not a second one.
    piped = _piped(config, "migrate", "downgrade", "0002_docex_2_9_9", "--force")
    assert piped.returncode == 0
    assert [line.split(":")[0][:4] for line in piped.stderr.splitlines()] == ["run "], \
        piped.stderr
