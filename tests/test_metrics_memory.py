"""What keeps `metrics` and `report --html` flat in memory as the fleet grows: the
exposition and the JSON envelope are written in pieces as they are made, the backup
folder is folded into one fact per tenant as it is read, and the discovery's catalog
rows stream through a server-side cursor. The figures are
benchmarks/observe.py's; these tests fail where a piece that scales with N comes back."""

from __future__ import annotations

import gc
import json
import os
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg2
from conftest import PG_HOST, PG_PORT, PG_USER
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from report_html_support import NOW, snapshot

from docex_ops.backends.digest import TableDigest
from docex_ops.backends.pg_sql import DbapiConnection
from docex_ops.backup.manifest import MANIFEST_SUFFIX, Manifest
from docex_ops.cli.metrics import Scrapes
from docex_ops.cli.metrics_families import CHUNK_SAMPLES, exposition_chunks, families
from docex_ops.cli.output import StreamedList, json_chunks, render_json
from docex_ops.observe.backups import facts_for, read_folder


class _Whole(Collector):
    def __init__(self, snap: object) -> None:
        self.snap = snap

    def collect(self):  # type: ignore[no-untyped-def]
        yield from families(self.snap)  # type: ignore[arg-type]


def test_a_family_of_many_tenants_is_written_in_pieces_that_read_back_whole() -> None:
    tenants = 2 * CHUNK_SAMPLES + 7
    snap = snapshot(tenants)
    chunks = list(exposition_chunks(snap))
    # No piece holds more than CHUNK_SAMPLES samples' text ...
    assert max(sum(not line.startswith(b"#") for line in c.splitlines())
               for c in chunks) <= CHUNK_SAMPLES
    # ... and together they are exactly what prometheus_client writes of the whole.
    whole = b"".join(chunks)
    assert whole == generate_latest(_Whole(snapshot(tenants)))
    parsed = {f.name: f for f in text_string_to_metric_families(whole.decode())}
    sizes = parsed["docex_ops_tenant_size_bytes"].samples
    assert len(sizes) == tenants and len({s.labels["tenant"] for s in sizes}) == tenants
    assert whole.count(b"# HELP docex_ops_tenant_size_bytes ") == 1


def _manifest(folder: Path, tenant: str, n: int, archive: str) -> None:
    finished = (NOW - timedelta(hours=n)).isoformat()
    body = Manifest(tenant, "postgresql", f"tenant_{tenant}", "0003_object_paths",
                    {"document": TableDigest(0, "0" * 64)}, archive, "0" * 64, 4, 1,
                    "15", "pg_dump 15", "0", finished, finished).to_json()
    (folder / f"{tenant}.{n:04d}{MANIFEST_SUFFIX}").write_text(body)


def test_a_backup_folder_is_kept_as_one_fact_per_tenant_not_a_copy_per_manifest(
        tmp_path: Path) -> None:
    tenants, copies = 20, 50
    (tmp_path / "a.dump").write_bytes(b"dump")
    old = (NOW - timedelta(days=30)).timestamp()
    os.utime(tmp_path / "a.dump", (old, old))
    for t in range(tenants):
        for n in range(copies):
            # t0's newest copy points at a missing archive: newest, but not verified.
            _manifest(tmp_path, f"t{t}", n, "gone.dump" if (t, n) == (0, 0) else "a.dump")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        read = read_folder(tmp_path, None)
        gc.collect()
        grown = tracemalloc.take_snapshot().compare_to(before, "filename")
    finally:
        tracemalloc.stop()
    # pathlib interns each name it parses: the interpreter's own table, not ours.
    kept = sum(d.size_diff for d in grown if "pathlib" not in d.traceback[0].filename)
    assert read.problems == [] and len(read.facts) == tenants
    facts = facts_for(read, [f"t{t}" for t in range(tenants)]).facts
    assert facts["t0"].archives == copies and facts["t0"].newest_at == NOW
    assert facts["t0"].newest_verified_at == NOW - timedelta(hours=1)
    assert facts["t5"].newest_verified_at == facts["t5"].newest_at == NOW
    # 1,000 manifests: a per-copy record (its path, archive name, times) alone is
    # >= 300 bytes each; 20 facts are a few kB.
    assert kept < 60 * 1024, f"{kept} bytes kept for {tenants * copies} manifests"


def test_streamed_catalog_rows_come_through_a_server_side_cursor(pg_database: str) -> None:
    raw = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=pg_database)
    try:
        conn = DbapiConnection(raw)
        rows = conn.exec_driver_sql(
            "SELECT g FROM generate_series(1, 5000) g", None,
            execution_options={"stream_results": True, "max_row_buffer": 100})
        seen, open_cursors = [], []
        for (value,) in rows:
            seen.append(value)
            if value == 2500:  # mid-way: the rest is still on the server
                with raw.cursor() as probe:
                    probe.execute("SELECT name FROM pg_cursors")
                    open_cursors = [name for (name,) in probe.fetchall()]
        assert seen == list(range(1, 5001))
        assert open_cursors == ["docex_ops_stream"]
        with raw.cursor() as probe:  # closed once read to the end
            probe.execute("SELECT count(*) FROM pg_cursors")
            assert probe.fetchone() == (0,)
        assert conn.exec_driver_sql("SELECT 1").all() == [(1,)]  # unstreamed as before
    finally:
        raw.close()


def test_the_json_envelope_is_written_as_its_streamed_arrays_are_made() -> None:
    made: list[int] = []

    def samples() -> Iterator[dict[str, int]]:
        for n in range(3000):
            made.append(n)
            yield {"value": n}

    payload = {"empty": StreamedList(lambda: iter(())), "samples": StreamedList(samples),
               "nested": StreamedList(lambda: ({"inner": StreamedList(lambda: [1, 2])},))}
    pieces = json_chunks(payload, size=1024)
    next(pieces)
    assert 0 < len(made) < 100  # the first piece went out before most samples existed
    text = "".join(json_chunks(payload))  # written again whole (stdout and --report FILE)
    whole = {"empty": [], "samples": [{"value": n} for n in range(3000)],
             "nested": [{"inner": [1, 2]}]}
    assert text == json.dumps(whole, indent=2)
    assert render_json(payload, compact=True) == json.dumps(whole, separators=(",", ":"))


def test_metrics_serve_reads_the_fleet_on_one_thread_whichever_thread_scrapes() -> None:
    readers: list[int] = []

    def read() -> bytes:
        readers.append(threading.get_ident())
        return b"x"

    scrapes = Scrapes(read, min_interval=0)
    callers = [threading.Thread(target=scrapes.body) for _ in range(4)]
    for caller in callers:
        caller.start()
        caller.join()
    assert len(readers) == 4 and len(set(readers)) == 1
    assert readers[0] not in {c.ident for c in callers} | {threading.get_ident()}
