"""Debian's Chromium, headless, for the HTML report's tests: screenshots, the rendered
DOM, and the network log of a page load (scripts/ensure-chromium.sh installs it)."""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root (no sandbox), and none of Chromium's own traffic (updates, sync,
# safe browsing), so that any request in the net log is the page's.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio"]
NO_SCRIPT = "--blink-settings=scriptEnabled=false"


def chromium(page: Path, tmp: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.exists(), "no /usr/bin/chromium: run scripts/ensure-chromium.sh"
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *flags,
                           page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def screenshot(page: Path, tmp: Path, width: int, height: int) -> Path:
    shot = tmp / f"shot-{width}x{height}.png"
    chromium(page, tmp, f"--screenshot={shot}", f"--window-size={width},{height}",
             "--hide-scrollbars")
    return shot


def dump_dom(page: Path, tmp: Path, *flags: str) -> str:
    return chromium(page, tmp, "--dump-dom", *flags).stdout


def page_requests(page: Path, tmp: Path) -> tuple[list[str], int]:
    """(every URL the page asked the network stack for, how many requests Chromium made
    in all). The net log holds Chromium's own traffic too (its clock, component and
    account checks); a request the page made names the page's origin as its initiator
    ("null" for a file), Chromium's own say "not an origin". file:// loads never reach
    the network stack, so a self-contained page asks for nothing."""
    log = tmp / f"net-log-{len(list(tmp.glob('net-log-*')))}.json"
    chromium(page, tmp, "--dump-dom", f"--log-net-log={log}",
             "--net-log-capture-mode=Everything")
    text = log.read_text()
    try:
        data = json.loads(text)
    except ValueError:  # killed mid-write: close the events list
        data = json.loads(text.rstrip().rstrip(",") + "]}")
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    jobs = [e.get("params", {}) for e in data["events"] if e["type"] == start]
    started = [j for j in jobs if "url" in j]
    return [j["url"] for j in started if j.get("initiator", "not an origin")
            != "not an origin"], len(started)


class Devtools:
    """Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated
    JSON): what --dump-dom cannot do with scripts off, since it runs a script itself."""

    def __init__(self, tmp: Path, *flags: str) -> None:
        assert CHROMIUM.exists(), "no /usr/bin/chromium: run scripts/ensure-chromium.sh"
        to_child, self._to = os.pipe()
        self._from, from_child = os.pipe()

        def pipes() -> None:  # in the child, before exec: the fds Chromium reads/writes
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
        self.proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             *flags, "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=pipes, pass_fds=(3, 4))  # noqa: PLW1509
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            if select.select([self._from], [], [], left)[0]:
                chunk = os.read(self._from, 1 << 20)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(raw))

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 60) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            got = self._message(deadline)
            if got.get("id") == self._next:
                assert "error" not in got, (method, got["error"])
                return dict(got.get("result", {}))
            self.events.append(got)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._message(deadline))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except AssertionError:
            pass  # it may close the pipe before it answers
        finally:
            os.close(self._to)
            os.close(self._from)
            self.proc.wait(timeout=30)


def load_without_scripts(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """(the DOM after loading the page with JavaScript off, every URL it requested)."""
    browser = Devtools(tmp, NO_SCRIPT)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        browser.call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
        browser.call("Network.enable", {}, session)
        browser.call("Page.enable", {}, session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
        browser.wait_for("Page.loadEventFired")
        root = browser.call("DOM.getDocument", {"depth": -1}, session)["root"]["nodeId"]
        dom = browser.call("DOM.getOuterHTML", {"nodeId": root}, session)["outerHTML"]
        requested = [e["params"]["request"]["url"] for e in browser.events
                     if e.get("method") == "Network.requestWillBeSent"]
        return str(dom), requested
    finally:
        browser.close()


def page_width(page: Path, tmp: Path, width: int) -> int:
    """The page's laid-out width (document scrollWidth) in a phone-sized viewport: more
    than ``width`` means the reader scrolls sideways."""
    browser = Devtools(tmp)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        browser.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": True}, session)
        browser.call("Page.enable", {}, session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
        browser.wait_for("Page.loadEventFired")
        found = browser.call("Runtime.evaluate", {
            "expression": "document.documentElement.scrollWidth", "returnByValue": True},
            session)
        return int(found["result"]["value"])
    finally:
        browser.close()


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the pixel data): a blank page's
    screenshot is one colour, a few distinct values once filtered; a page has many."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


class _Text(HTMLParser):
    """The text a reader sees, per section id (script and style left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.current = ""
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and found.get("id"):
            self.current = str(found["id"])
        if tag in {"style", "script", "title"}:
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script", "title"}:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:  # each text node on its own: blocks do not run together
            self.sections.setdefault(self.current, []).append(data)


def section_texts(dom: str) -> dict[str, str]:
    """Section id -> its visible text, whitespace collapsed ("" holds the header)."""
    parser = _Text()
    parser.feed(dom)
    return {k: " ".join(" ".join(v).split()) for k, v in parser.sections.items()}


