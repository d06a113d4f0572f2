"""``docex-ops metrics``: the fleet snapshot in the Prometheus text exposition format,
on stdout, into node_exporter's textfile folder, or served on ``/metrics``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from docex_ops.cli.common import UsageProblem, emit, format_option, info, is_json, state
from docex_ops.cli.files import replace_atomically
from docex_ops.cli.options import Duration
from docex_ops.cli.snapshot_options import read_snapshot, real_dir, snapshot_options

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from docex_ops.observe.snapshot import FleetSnapshot

TEXTFILE_NAME = "docex_ops.prom"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@click.group("metrics", invoke_without_command=True, epilog="\b\nExamples:\n"
             "  docex-ops metrics --backups /var/backups/docex\n"
             "  docex-ops metrics --textfile /var/lib/node_exporter/textfile\n"
             "  docex-ops metrics serve --listen 127.0.0.1:9187 --min-interval 15s")
@snapshot_options
@click.option("--textfile", type=click.Path(path_type=Path), default=None,
              callback=real_dir, metavar="DIR",
              help=f"Write DIR/{TEXTFILE_NAME} atomically (node_exporter's textfile "
                   "collector) instead of printing.")
@format_option
@click.pass_context
def metrics(ctx: click.Context, backups: Path | None, stale_after: float,
            textfile: Path | None, fmt: str | None) -> None:
    """The fleet as Prometheus metrics: tenants by state and revision, the last run.

    Tenants by state and by revision per server, how far each is behind head, the last
    migration run (status, start, duration, failed tenants), backup age per tenant
    (--backups), tenant sizes, server connections by state against max_connections and
    the connection budget (and PgBouncer's pools where pooler_admin is configured), and
    the last `verify-isolation --record` results. Read set-based: one catalog pass per
    server, a few grouped queries of the control schema/file, the manifests' stat.

    Parts that cannot be read are counted in docex_ops_snapshot_problems (and listed
    with --format json); the rest is still written, and the exit code stays 0.
    """
    if ctx.invoked_subcommand is not None:
        return
    from docex_ops.cli.metrics_families import exposition, exposition_chunks

    snapshot = read_snapshot(state().manager, backups, stale_after)
    written = write_textfile(textfile, exposition(snapshot)) if textfile is not None else None
    for problem in snapshot.problems:
        info(f"problem: {problem}")
    if is_json(fmt):
        emit([], fmt, payload=json_payload(snapshot, written),
             problems=[{"message": p} for p in snapshot.problems])
    elif written is not None:
        info(f"wrote {written}")
    else:
        for chunk in exposition_chunks(snapshot):  # bytes: click writes them as they are
            click.echo(chunk, nl=False)


def json_payload(snapshot: FleetSnapshot, written: Path | None) -> dict[str, Any]:
    """The snapshot's numbers as the metric families carry them; the families and their
    samples are made as the envelope is written (a sample per tenant and family)."""
    from docex_ops.cli.metrics_families import families
    from docex_ops.cli.output import StreamedList

    def family(f: Metric) -> dict[str, Any]:
        return {"name": f.name, "type": f.type, "help": f.documentation,
                "samples": StreamedList(lambda: (
                    {"name": s.name, "labels": s.labels, "value": s.value}
                    for s in f.samples))}

    return {"taken_at": snapshot.taken_at, "backend": snapshot.backend,
            "seconds": snapshot.seconds, "textfile": str(written) if written else None,
            "metrics": StreamedList(lambda: map(family, families(snapshot)))}


def write_textfile(directory: Path, body: bytes) -> Path:
    """DIR/docex_ops.prom replaced whole: the temp file's name (not *.prom) is one the
    textfile collector ignores."""
    target = directory / TEXTFILE_NAME
    replace_atomically(target, body, mode=0o644)  # node_exporter often runs as another user
    return target


class ListenAddress(click.ParamType[tuple[str, int]]):
    """HOST:PORT ([::1]:9187 for IPv6)."""

    name = "host:port"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        host, sep, port = str(value).rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            self.fail(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9187)", param, ctx)
        return host, int(port)


class Scrapes:
    """The exposition of the newest snapshot, read again at most every ``min_interval``
    seconds however often it is scraped (one read at a time).

    Every reading runs on one long-lived thread, not on the scrape's own: the C library
    gives each new thread's allocations an arena of their own, so readings on request
    threads kept growing the process by a megabyte a scrape at 10,000 tenants."""

    def __init__(self, read: Callable[[], bytes], min_interval: float) -> None:
        self.read, self.min_interval = read, min_interval
        self._lock = threading.Lock()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="fleet-read")
        self._body: bytes | None = None
        self._read_at = 0.0

    def body(self) -> bytes:
        with self._lock:
            if self._body is None or time.monotonic() - self._read_at >= self.min_interval:
                self._body = None  # the last reading is not held while the next is made
                self._body = self._reader.submit(self.read).result()
                self._read_at = time.monotonic()
            return self._body


def make_handler(scrapes: Scrapes) -> type[BaseHTTPRequestHandler]:
    class MetricsHandler(BaseHTTPRequestHandler):
        # GET and HEAD only: every other method is http.server's 501.
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._answer(with_body=True)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            self._answer(with_body=False)

        def _answer(self, with_body: bool) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                body, status, kind = b"not found: only /metrics is served\n", 404, "text/plain"
            else:
                try:
                    body, status, kind = scrapes.body(), 200, CONTENT_TYPE
                except Exception as exc:  # noqa: BLE001 - the scrape fails, the server stays
                    body = f"docex-ops could not read the fleet: {exc}\n".encode()
                    status, kind = 500, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # a scrape every 15 s would fill the log

    return MetricsHandler


@metrics.command("serve", epilog="\b\nExample:\n"
                 "  docex-ops metrics serve --listen 127.0.0.1:9187 --min-interval 15s "
                 "--backups /var/backups/docex")
@snapshot_options
@click.option("--listen", type=ListenAddress(), default="127.0.0.1:9187", show_default=True,
              help="Address to serve /metrics on (HOST:PORT; port 0 picks a free one).")
@click.option("--min-interval", type=Duration(), default=15.0, metavar="DURATION",
              help="Read the fleet at most this often; scrapes in between get the last "
                   "reading (default 15s).")
@format_option
def serve_cmd(backups: Path | None, stale_after: float, listen: tuple[str, int],
              min_interval: float, fmt: str | None) -> None:
    """Serve the metrics on http://HOST:PORT/metrics for a Prometheus scrape job.

    Read-only (GET and HEAD of /metrics; 404 elsewhere), no tenant data beyond ids.
    Runs until interrupted (Ctrl-C, SIGTERM); --format json makes a failure to start
    (the address taken, say) an envelope.
    """
    from docex_ops.cli.metrics_families import exposition

    manager = state().manager

    def read() -> bytes:
        try:
            return exposition(read_snapshot(manager, backups, stale_after))
        finally:
            manager.close_all_connections()  # nothing held open between readings

    server_class = _V6Server if ":" in listen[0] else ThreadingHTTPServer
    try:
        server = server_class(listen, make_handler(Scrapes(read, min_interval)))
    except OSError as exc:
        raise UsageProblem(f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}") \
            from None
    server.daemon_threads = True
    host, port = server.server_address[:2]
    info(f"serving http://{_url_host(str(host))}:{port}/metrics (every "
         f"{min_interval:g}s at most; Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
