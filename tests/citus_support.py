"""A Citus cluster of the test run's own: a coordinator and two workers from initdb.

Built on tests/pg_clusters.py (same initdb/pg_ctl helpers, same fast settings), with
``shared_preload_libraries = citus``. Each cluster gets a database ``docex`` with the
extension; the workers are added to the coordinator, which holds no shards itself.
Where citus.so is not installed, every test using the fixture skips with one line that
says why (``scripts/ensure-citus.sh`` builds it; CI runs it first).

Tests use ``citus_settings`` (a Settings with ``topology: citus`` whose server is the
coordinator, schema names of the test's own prefix) or ``citus_manager``; check from
outside with ``citus_connect(citus_cluster)``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pg_clusters as pgc
import psycopg2
import pytest

from docex_ops.config.settings import Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

DATABASE = "docex"
WORKERS = ("w1", "w2")


@dataclass
class CitusTestCluster:
    coordinator: pgc.Cluster
    workers: dict[str, pgc.Cluster]  # name (as in database.postgres.nodes) -> cluster

    @property
    def nodes(self) -> dict[str, str]:
        """``database.postgres.nodes``: worker name -> host:port."""
        return {name: f"{c.host}:{c.port}" for name, c in self.workers.items()}


def citus_missing() -> str | None:
    """Why Citus cannot be had here (one line), or None when citus.so is installed."""
    try:
        libdir = subprocess.run([str(pgc.PG_BIN / "pg_config"), "--pkglibdir"], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"Citus tests skipped: cannot run pg_config in {pgc.PG_BIN}: {exc}"
    if not (Path(libdir) / "citus.so").is_file():
        return (f"Citus tests skipped: citus.so is not in {libdir} "
                "(run scripts/ensure-citus.sh to build it)")
    return None


def connect(cluster: pgc.Cluster, database: str = DATABASE) -> Any:
    conn = psycopg2.connect(host=cluster.host, port=cluster.port, user="postgres",
                            dbname=database)
    conn.autocommit = True
    return conn


def citus_connect(citus: CitusTestCluster) -> Any:
    """psycopg2 autocommit connection to the coordinator's ``docex`` database."""
    return connect(citus.coordinator)


def _with_extension(cluster: pgc.Cluster) -> None:
    conn = connect(cluster, "postgres")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {DATABASE}")
    conn.close()
    conn = connect(cluster)
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION citus")
    conn.close()


def start_citus(root: Path, started: list[pgc.Cluster]) -> CitusTestCluster:
    """Coordinator + workers ``w1``, ``w2`` under ``root``; every cluster started is put in
    ``started`` as it starts (the caller stops them, also when this fails)."""
    names = ["coordinator", *WORKERS]
    # synchronous_commit on (cheap with fsync off): Citus's online move refuses, rightly,
    # a source that commits asynchronously (move/citus.py).
    extra = {"shared_preload_libraries": "'citus'", "synchronous_commit": "on"}
    with ThreadPoolExecutor(len(names)) as pool:
        started.extend(pool.map(lambda n: pgc.start_cluster(n, root, extra), names))
    with ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(_with_extension, started))
    coordinator, *workers = started
    conn = connect(coordinator)
    with conn.cursor() as cur:
        cur.execute("SELECT citus_set_coordinator_host(%s, %s)",
                    (coordinator.host, coordinator.port))
        for worker in workers:
            cur.execute("SELECT citus_add_node(%s, %s)", (worker.host, worker.port))
    conn.close()
    return CitusTestCluster(coordinator, dict(zip(WORKERS, workers, strict=True)))


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[CitusTestCluster]:
    """Coordinator + workers ``w1``, ``w2`` on free ports; stopped and removed at the end."""
    missing = citus_missing()
    if missing:
        pytest.skip(missing)
    with started_citus() as cluster:
        yield cluster


@contextmanager
def started_citus() -> Iterator[CitusTestCluster]:
    """A throw-away coordinator + workers ``w1``, ``w2`` (the fixture's, and benchmarks')."""
    pgc.require_binaries()
    root = pgc.make_root()
    started: list[pgc.Cluster] = []
    try:
        yield start_citus(root, started)
    finally:
        for cluster in started:
            pgc.stop_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)


def citus_mapping(citus: CitusTestCluster, schema_prefix: str,
                  nodes: bool = True) -> dict[str, Any]:
    """A DocEX config whose server is the coordinator, ``topology: citus``."""
    postgres: dict[str, Any] = {
        "host": citus.coordinator.host, "port": citus.coordinator.port, "user": "postgres",
        "database": DATABASE, "schema_template": schema_prefix + "{tenant_id}",
        "control_schema": "ctl_" + schema_prefix.rstrip("_"), "topology": "citus"}
    if nodes:
        postgres["nodes"] = citus.nodes
    return {
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "postgresql", "postgres": postgres},
    }


@pytest.fixture
def citus_settings(citus_cluster: CitusTestCluster, schema_prefix: str) -> Settings:
    return settings_from_mapping(citus_mapping(citus_cluster, schema_prefix), "<test citus>")


@pytest.fixture
def citus_manager(citus_settings: Settings) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    mgr = TenantDatabaseManager(citus_settings)
    yield mgr
    TenantDatabaseManager.reset()


@pytest.fixture
def citus_config_file(citus_cluster: CitusTestCluster, schema_prefix: str,
                      tmp_path: Path) -> Path:
    """``citus_mapping`` as a DocEX YAML file, for CLI tests."""
    import yaml

    path = tmp_path / "citus.yaml"
    path.write_text(yaml.safe_dump(citus_mapping(citus_cluster, schema_prefix),
                                   sort_keys=False))
    return path
