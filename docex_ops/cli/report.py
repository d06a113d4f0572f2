"""``docex-ops report --html FILE``: the fleet on one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from docex_ops.cli.common import UsageProblem, emit, format_option, is_json, state
from docex_ops.cli.files import replace_atomically
from docex_ops.cli.options import example
from docex_ops.cli.output import problem_entry
from docex_ops.cli.snapshot_options import read_snapshot, snapshot_options


def _target(html: str) -> Path | None:
    """Where to write (None: stdout), refused before anything is read: a symlink could
    point the page at any file the operator can write, a directory is a typo."""
    if html == "-":
        return None
    path = Path(html)
    if path.is_symlink():
        raise UsageProblem(f"--html {html}: is a symlink; name the file itself")
    if path.is_dir():
        raise UsageProblem(f"--html {html}: is a directory; name a file in it")
    if path.exists() and not path.is_file():  # a device or a pipe is never replaced
        raise UsageProblem(f"--html {html}: is not a regular file")
    if not path.parent.is_dir():
        raise UsageProblem(f"--html {html}: folder {path.parent} does not exist")
    return path


@click.command("report", epilog=example(
    "docex-ops report --html fleet.html --backups /var/backups/docex --stale-after 1d"))
@click.option("--html", "html", required=True, metavar="FILE",
              help="Write the page here (replaced atomically); - writes it on stdout.")
@snapshot_options  # --backups DIR, --stale-after: the same as `metrics`
@format_option
def report_cmd(html: str, backups: Path | None, stale_after: float, fmt: str | None) -> None:
    """One self-contained HTML page of the fleet: what a DBA looks at.

    Revisions per server, tenants behind head, the last migration runs and their
    failed tenants, backup freshness (with --backups), tenant sizes, connections
    against each server's limits and the last `verify-isolation --record`
    findings, worst first. Inline CSS and SVG only: no script, nothing fetched,
    readable printed and on a phone. Read set-based, from the same snapshot as
    `docex-ops metrics`. --format json says where it wrote and what it found.
    """
    target = _target(html)
    if target is None and is_json(fmt):
        raise UsageProblem("--html - writes the page on stdout; with --format json name a file")
    from docex_ops.cli.report_html import counts, findings, render_html

    snap = read_snapshot(state().manager, backups, stale_after)
    page = render_html(snap)
    if target is None:
        click.echo(page, nl=False)
        return
    size = replace_atomically(target, page.encode("utf-8"))
    numbers = counts(snap)
    found = findings(snap)
    levels = [level for level, _ in found]
    if not is_json(fmt):
        click.echo(f"wrote {target} ({size} bytes): {levels.count('FAIL')} FAIL, "
                   f"{levels.count('WARN')} WARN")
    emit([{"level": level, "finding": text} for level, text in found], fmt, payload={
        "file": str(target.resolve()), "bytes": size, "taken_at": snap.taken_at,
        "counts": numbers,
        "findings": [{"level": level, "message": text} for level, text in found]},
        problems=[problem_entry(p) for p in snap.problems])
