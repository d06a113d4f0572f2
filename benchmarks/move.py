"""Moving a tenant between servers, and fleet ``migrate status``, on clusters of its own.

Part ``move`` (per round): a tenant with ~1,000,000 rows (1,000 baskets and
999,000 documents) on server b is copied by plain ``pg_dump -Fc -n SCHEMA |
pg_restore -d`` into a scratch database on c (the baseline), then moved online
to c with ``tenants move`` while a thread writes a basket through the manager
every few milliseconds. Printed: the online total, its write freeze, the
longest pause between two acknowledged writes as the writer saw it, writes
lost (acknowledged but not on the target; must be 0), and online/baseline.
Then the same tenant is moved back offline (``--offline``) beside the same
baseline.

Part ``status``: 3 servers x N tenants (default 1,000), and the CLI's ``migrate
status`` timed over the fleet, beside the same command over 1 server x N.

The servers are started like the test suite's (tests/pg_clusters.py: initdb,
wal_level=logical, fsync off) and stopped at the end.

    .venv/bin/python benchmarks/move.py [--rounds 3] [--rows 1000000] [--tenants 1000]
                                        [--part move|status|all]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg2
import yaml
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pg_clusters as pgc  # noqa: E402  (the test suite's cluster helpers)

from docex_ops.backends.contents import allow_rows  # noqa: E402
from docex_ops.config.settings import settings_from_mapping  # noqa: E402
from docex_ops.manager.tenant_manager import TenantDatabaseManager  # noqa: E402
from docex_ops.migrate.scripts import head_revision  # noqa: E402
from docex_ops.move.run import MoveOptions, finish_move, move_tenant  # noqa: E402
from docex_ops.schema.ddl import head_ddl, version_table_ddl  # noqa: E402
from docex_ops.schema.head import docbasket  # noqa: E402
from docex_ops.topology.directory import ACTIVE  # noqa: E402
from docex_ops.topology.several import SeveralServers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_TEMPLATE = "tenant_{tenant_id}"

_LOAD_SQL = """
INSERT INTO {s}.docbasket (id, name, storage_config, status, created_at, updated_at)
SELECT 'bas_' || i, 'basket-' || i, '{{}}', 'active', now(), now()
  FROM generate_series(1, 1000) i;
INSERT INTO {s}.document (id, basket_id, name, source, path, document_type, checksum, status,
                          processing_attempts, created_at, updated_at, size)
SELECT md5(i::text), 'bas_' || (1 + i % 1000), 'doc-' || i || '.pdf', 'upload',
       '/docs/' || i || '.pdf', 'file', md5(i::text || 'x'), 'active', 0, now(), now(), i % 90000
  FROM generate_series(1, {documents}) i;
ANALYZE {s}.document;
"""


def fleet_mapping(clusters: dict[str, pgc.Cluster], directory: str) -> dict[str, Any]:
    servers = {name: {"host": c.host, "port": c.port, "database": "docex"}
               for name, c in clusters.items()}
    return {"security": {"multi_tenancy_model": "database_level",
                         "tenant_database_routing": True},
            "database": {"type": "postgresql", "postgres": {
                "user": "postgres", "schema_template": SCHEMA_TEMPLATE,
                "servers": servers, "directory_server": directory}}}


def connect(cluster: pgc.Cluster, database: str = "docex") -> Any:
    conn = psycopg2.connect(host=cluster.host, port=cluster.port, user="postgres",
                            dbname=database)
    conn.autocommit = True
    return conn


def start_clusters(names: list[str], root: Path) -> dict[str, pgc.Cluster]:
    with ThreadPoolExecutor(len(names)) as pool:
        started = dict(zip(names, pool.map(lambda n: pgc.start_cluster(n, root), names),
                           strict=True))
    for cluster in started.values():
        with closing(connect(cluster, "postgres")) as conn:
            conn.cursor().execute("CREATE DATABASE docex")
    return started


class Writer(threading.Thread):
    """Writes a basket through the manager every ~2 ms; retries until acknowledged."""

    def __init__(self, manager: TenantDatabaseManager, tenant_id: str) -> None:
        super().__init__(daemon=True)
        self.manager, self.tenant_id = manager, tenant_id
        self.acked: list[str] = []
        self.longest_pause = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        last, n = time.perf_counter(), 0
        now = dt.datetime(2026, 1, 1)
        while not self.stop.is_set():
            name = f"w-{uuid.uuid4().hex}"
            try:
                with self.manager.tenant_transaction(self.tenant_id) as session:
                    session.execute(insert(docbasket).values(
                        id=name[:36], name=name, storage_config={}, status="active",
                        created_at=now, updated_at=now))
            except RuntimeError:
                time.sleep(0.01)
                continue
            at = time.perf_counter()
            self.longest_pause, last = max(self.longest_pause, at - last), at
            self.acked.append(name)
            n += 1
            time.sleep(0.002)


def baseline_dump_restore(source: pgc.Cluster, target: pgc.Cluster, schema: str) -> float:
    """Plain pg_dump -Fc -n | pg_restore -d into a fresh database on the target, timed."""
    scratch = f"baseline_{uuid.uuid4().hex[:6]}"
    with closing(connect(target, "postgres")) as conn:
        conn.cursor().execute(f'CREATE DATABASE "{scratch}"')
    env = dict(os.environ, PGUSER="postgres", PGHOST=source.host)
    bindir = pgc.PG_BIN
    started = time.perf_counter()
    dump = subprocess.Popen([str(bindir / "pg_dump"), "-Fc", "-n", schema, "-p",
                             str(source.port), "-d", "docex"], stdout=subprocess.PIPE, env=env)
    subprocess.run([str(bindir / "pg_restore"), "-p", str(target.port), "-d", scratch,
                    "--single-transaction", "--no-owner"], stdin=dump.stdout, env=env,
                   check=True)
    assert dump.stdout is not None
    dump.stdout.close()
    if dump.wait() != 0:
        raise RuntimeError("pg_dump failed")
    seconds = time.perf_counter() - started
    with closing(connect(target, "postgres")) as conn:
        conn.cursor().execute(f'DROP DATABASE "{scratch}"')
    return seconds


def on_server(cluster: pgc.Cluster, schema: str, names: list[str]) -> int:
    with closing(connect(cluster)) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{schema}".docbasket WHERE name = ANY(%s)', (names,))
        return int(cur.fetchone()[0])


def move_round(clusters: dict[str, pgc.Cluster], rows: int, index: int) -> dict[str, float]:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_from_mapping(fleet_mapping(clusters, "b"), "<bench>"))
    fleet = manager.topology.several_servers("the move benchmark needs several servers")
    tenant = f"big{index}"
    fleet.reserve(tenant, "b")
    manager.provision(tenant)
    schema = fleet.location(tenant)
    with closing(connect(clusters["b"])) as conn:
        conn.cursor().execute(_LOAD_SQL.format(s=f'"{schema}"', documents=rows - 1000))
    figures = {"baseline": baseline_dump_restore(clusters["b"], clusters["c"], schema)}
    for mode, target in (("online", "c"), ("offline", "b")):
        writer = Writer(manager, tenant)
        writer.start()
        time.sleep(0.5)
        result = move_tenant(manager, tenant, target, MoveOptions(offline=mode == "offline"))
        time.sleep(0.5)
        writer.stop.set()
        writer.join(30)
        landed = on_server(clusters[target], schema, writer.acked)
        figures[f"{mode}_total"] = result.seconds
        figures[f"{mode}_freeze"] = result.freeze_seconds or 0.0
        figures[f"{mode}_pause"] = writer.longest_pause
        figures[f"{mode}_lost"] = len(writer.acked) - landed
        figures[f"{mode}_writes"] = len(writer.acked)
        figures["rows"] = result.rows
        finish_move(manager, tenant)
    manager.topology.drop(tenant, allow_rows)  # the benchmark tenant is ours to remove
    TenantDatabaseManager.reset()
    print(f"round {index + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()),
          flush=True)
    return figures


def report_move(rounds: list[dict[str, float]]) -> None:
    def show(key: str, scale: float = 1.0, unit: str = "s") -> str:
        values = sorted(r[key] * scale for r in rounds)
        return f"best {values[0]:.2f}{unit}, median {statistics.median(values):.2f}{unit}"

    print(f"\nmove of a {int(rounds[0]['rows']):,}-row tenant, {len(rounds)} round(s):")
    print(f"  baseline pg_dump -Fc -n | pg_restore: {show('baseline')}")
    for mode in ("online", "offline"):
        ratios = sorted(r[f"{mode}_total"] / r["baseline"] for r in rounds)
        print(f"  {mode:7s} move total {show(f'{mode}_total')}; freeze {show(f'{mode}_freeze')}"
              f"; writer's longest pause {show(f'{mode}_pause')}; "
              f"total/baseline best {ratios[0]:.2f}x, median {statistics.median(ratios):.2f}x; "
              f"acknowledged writes lost: {max(int(r[f'{mode}_lost']) for r in rounds)} of "
              f"{min(int(r[f'{mode}_writes']) for r in rounds)}+")


def provision_raw(cluster: pgc.Cluster, names: list[str]) -> None:
    """N tenant schemas with the DocEX DDL at head, in batches of 50 per transaction."""
    body = head_ddl("postgresql") + version_table_ddl(head_revision())
    with closing(connect(cluster)) as conn:
        conn.autocommit = False
        with conn.cursor() as cur:
            for at in range(0, len(names), 50):
                for name in names[at:at + 50]:
                    schema = SCHEMA_TEMPLATE.format(tenant_id=name)
                    cur.execute(f'CREATE SCHEMA "{schema}"; SET LOCAL search_path TO '
                                f'"{schema}";' + body)
                conn.commit()


def status_seconds(config: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "docex_ops.cli", "--config", str(config),
                           "--format", "json", "migrate", "status"], capture_output=True,
                          cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"migrate status failed: {done.stderr.decode()[-800:]}")
    return seconds


def status_part(clusters: dict[str, pgc.Cluster], tenants: int, rounds: int,
                root: Path) -> None:
    names = {s: [f"{s}{i:05d}" for i in range(tenants)] for s in clusters}
    started = time.perf_counter()
    with ThreadPoolExecutor(len(clusters)) as pool:
        list(pool.map(lambda s: provision_raw(clusters[s], names[s]), clusters))
    TenantDatabaseManager.reset()
    fleet_settings = settings_from_mapping(fleet_mapping(clusters, "b"), "<bench>")
    fleet = SeveralServers(fleet_settings)
    with fleet.directory.transaction() as conn:
        for server, ids in names.items():
            for tenant_id in ids:
                fleet.directory.put(conn, tenant_id, server, fleet.location(tenant_id), ACTIVE)
    fleet.dispose()
    print(f"\n{len(clusters)} x {tenants} tenants made in {time.perf_counter() - started:.0f}s")
    fleet_config, single_config = root / "fleet.yaml", root / "single.yaml"
    fleet_config.write_text(yaml.safe_dump(fleet_mapping(clusters, "b")))
    one = fleet_mapping({"c": clusters["c"]}, "c")
    single_config.write_text(yaml.safe_dump(one))
    fleet_times, single_times = [], []
    for _ in range(rounds):
        fleet_times.append(status_seconds(fleet_config))
        single_times.append(status_seconds(single_config))
    ratios = sorted(f / s for f, s in zip(fleet_times, single_times, strict=True))
    print(f"migrate status, CLI start to exit, {rounds} round(s):")
    print(f"  fleet {len(clusters)} x {tenants}: best {min(fleet_times):.2f}s, median "
          f"{statistics.median(fleet_times):.2f}s (target < 3 s)")
    print(f"  one server x {tenants}: best {min(single_times):.2f}s, median "
          f"{statistics.median(single_times):.2f}s; fleet/one best {ratios[0]:.2f}x, "
          f"median {statistics.median(ratios):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--part", choices=["move", "status", "all"], default="all")
    args = parser.parse_args()
    pgc.require_binaries()
    root = pgc.make_root()
    clusters: dict[str, pgc.Cluster] = {}
    try:
        names = ["b", "c"] + (["d"] if args.part != "move" else [])
        clusters = start_clusters(names, root)
        print(f"servers: {', '.join(f'{n}:{c.port}' for n, c in clusters.items())}; "
              f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout}")
        if args.part in ("move", "all"):
            report_move([move_round(clusters, args.rows, i) for i in range(args.rounds)])
        if args.part in ("status", "all"):
            status_part(clusters, args.tenants, args.rounds, root)
    finally:
        TenantDatabaseManager.reset()
        for cluster in clusters.values():
            pgc.stop_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
