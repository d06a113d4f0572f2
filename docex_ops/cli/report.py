"""``docex-ops report --html FILE``: the fleet on one self-contained HTML page."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from docex_ops.cli.common import UsageProblem, emit, format_option, is_json, state
from docex_ops.cli.options import Duration, example
from docex_ops.cli.output import problem_entry


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
    if not path.parent.is_dir():
        raise UsageProblem(f"--html {html}: folder {path.parent} does not exist")
    return path


def write_atomically(path: Path, text: str) -> int:
    """Write ``text`` so that a reader sees the old page or the new one, never half a
    page (temp file in the same folder, fsync, os.replace); returns the bytes written."""
    data = text.encode("utf-8")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644 & ~_umask()
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return len(data)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@click.command("report", epilog=example(
    "docex-ops report --html fleet.html --backups /var/backups/docex --stale-after 1d"))
@click.option("--html", "html", required=True, metavar="FILE",
              help="Write the page here (replaced atomically); - writes it on stdout.")
@click.option("--backups", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="Backup folder whose manifests give each tenant's backup age.")
@click.option("--stale-after", "stale_after", type=Duration(minimum=1), default="1d",
              show_default=True, metavar="DURATION",
              help="A newest verified backup older than this is stale (12h, 1d, 2d).")
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
    from docex_ops.observe.collect import collect

    snap = collect(state().manager, backups, stale_after)
    page = render_html(snap)
    if target is None:
        click.echo(page, nl=False)
        return
    size = write_atomically(target, page)
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
