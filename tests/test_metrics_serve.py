"""`docex-ops metrics serve`: scraped over loopback in its own process: /metrics only,
GET and HEAD, 404 elsewhere, the --min-interval cache, a bad --listen refused."""

from __future__ import annotations

import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from migration_helpers import cli, spawn
from test_metrics_cli import one, parse

MIN_INTERVAL = 2.0


@pytest.fixture
def served(config_file: Path) -> Iterator[str]:
    assert cli(config_file, "tenants", "provision", "t1")[0] == 0
    process = spawn(config_file, "metrics", "serve", "--listen", "127.0.0.1:0",
                    "--min-interval", f"{MIN_INTERVAL}s")
    try:
        assert process.stderr is not None
        for line in process.stderr:
            found = re.search(r"serving (http://127\.0\.0\.1:\d+)/metrics", line)
            if found:
                break
        else:
            pytest.fail(f"metrics serve never served; exit {process.wait()}")
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_scraped_over_loopback_with_the_min_interval_cache(served: str,
                                                          config_file: Path) -> None:
    status, kind, body = get(served + "/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    first = parse(body.decode())
    read_at = time.monotonic()
    assert one(first, "docex_ops_tenants", server="default", state="current") == 1
    assert cli(config_file, "tenants", "provision", "t2")[0] == 0
    cached = parse(get(served + "/metrics")[2].decode())
    if time.monotonic() - read_at < MIN_INTERVAL:  # within the interval: the same reading
        assert cached == first
    time.sleep(max(0.0, MIN_INTERVAL - (time.monotonic() - read_at)) + 0.2)
    fresh = parse(get(served + "/metrics")[2].decode())
    assert one(fresh, "docex_ops_tenants", server="default", state="current") == 2
    assert one(fresh, "docex_ops_snapshot_timestamp_seconds") > \
        one(first, "docex_ops_snapshot_timestamp_seconds")
    head = get(served + "/metrics", "HEAD")
    assert head[0] == 200 and head[2] == b""
    assert get(served + "/metrics?name[]=x")[0] == 200  # a scraper's query string is fine
    for path in ("/", "/metrics/", "/favicon.ico", "/../metrics"):
        assert get(served + path)[0] == 404, path
    assert get(served + "/metrics", "POST")[0] == 501  # read-only
    assert get(served + "/metrics", "DELETE")[0] == 501


@pytest.mark.parametrize("kind", ["sqlite"])
@pytest.mark.parametrize("listen", ["nohost", "127.0.0.1:99999", "127.0.0.1:x", ":9187"])
def test_a_bad_listen_address_is_one_line(config_file: Path, listen: str) -> None:
    code, output = cli(config_file, "metrics", "serve", "--listen", listen)
    assert code == 2 and "--listen" in output and "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "HOST:PORT" in errors[0]  # click's usage lines, one error


@pytest.mark.parametrize("kind", ["sqlite"])
def test_an_address_in_use_is_one_line(config_file: Path, served: str) -> None:
    taken = served.removeprefix("http://")
    code, output = cli(config_file, "metrics", "serve", "--listen", taken)
    assert code == 2 and f"cannot listen on {taken}" in output
    assert "Traceback" not in output
