"""Fixtures: a real PostgreSQL database per test run, real SQLite files per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from docex_ops.config.settings import Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

PG_HOST = os.environ.get("DOCEX_TEST_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DOCEX_TEST_PGPORT", "5432"))
PG_USER = os.environ.get("DOCEX_TEST_PGUSER", "postgres")


def pg_admin_connect(database: str = "postgres") -> Any:
    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this run's own, dropped at the end: runs never see each other."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"docex_ops_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = pg_admin_connect()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_conn(pg_database: str) -> Iterator[Any]:
    conn = pg_admin_connect(pg_database)
    yield conn
    conn.close()


@pytest.fixture
def schema_prefix() -> str:
    """Each test gets its own schema template, so tests sharing the database never meet."""
    return f"t{uuid.uuid4().hex[:6]}_"


def make_settings(kind: str, tmp_path: Path, pg_database: str | None = None,
                  schema_prefix: str = "tenant_", **database: Any) -> Settings:
    raw: dict[str, Any] = {
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": kind, **database},
    }
    if kind == "postgresql":
        raw["database"]["postgres"] = {
            "host": PG_HOST, "port": PG_PORT, "user": PG_USER, "database": pg_database,
            "schema_template": schema_prefix + "{tenant_id}",
            "control_schema": "ctl_" + schema_prefix.rstrip("_")}
    else:
        raw["database"]["sqlite"] = {
            "path_template": str(tmp_path / "storage" / "tenant_{tenant_id}" / "docex.db")}
    return settings_from_mapping(raw, f"<test {kind}>")


@pytest.fixture(params=["postgresql", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_factory(tmp_path: Path, schema_prefix: str, request: pytest.FixtureRequest
                     ) -> Callable[..., Settings]:
    def factory(kind: str, **database: Any) -> Settings:
        db = request.getfixturevalue("pg_database") if kind == "postgresql" else None
        return make_settings(kind, tmp_path, db, schema_prefix, **database)
    return factory


@pytest.fixture
def settings(kind: str, settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(kind)


@pytest.fixture
def manager(settings: Settings) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    mgr = TenantDatabaseManager(settings)
    yield mgr
    TenantDatabaseManager.reset()


@pytest.fixture
def config_file(settings: Settings, tmp_path: Path) -> Path:
    """The test settings written as a DocEX YAML file, for CLI tests."""
    from docs_support import write_config

    return write_config(settings, tmp_path / "config.yaml")


@pytest.fixture(scope="session")
def pg_clusters() -> Iterator[dict[str, Any]]:
    """Two extra PostgreSQL clusters (wal_level=logical) for fleet tests, stopped at the end.

    Missing server binaries fail the fleet tests with a clear message; they never skip.
    """
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    import pg_clusters as pgc

    pgc.require_binaries()
    root = pgc.make_root()
    started: list[Any] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            started.extend(pool.map(lambda n: pgc.start_cluster(n, root), ["b", "c"]))
        for cluster in started:
            conn = psycopg2.connect(host=cluster.host, port=cluster.port, user="postgres",
                                    dbname="postgres")
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE docex")
            conn.close()
        yield {c.name: c for c in started}
    finally:
        for cluster in started:
            pgc.stop_cluster(cluster)
        shutil.rmtree(root, ignore_errors=True)


def fleet_mapping(pg_database: str, clusters: dict[str, Any], schema_prefix: str,
                  **database: Any) -> dict[str, Any]:
    """A DocEX config with three servers: ``main`` (the run's database on the usual server,
    also the directory server) and the clusters ``b`` and ``c``."""
    servers = {"main": {"host": PG_HOST, "port": PG_PORT, "database": pg_database}}
    servers.update({name: {"host": c.host, "port": c.port, "database": "docex"}
                    for name, c in sorted(clusters.items())})
    return {
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "postgresql", **database, "postgres": {
            "user": PG_USER, "schema_template": schema_prefix + "{tenant_id}",
            "control_schema": "ctl_" + schema_prefix.rstrip("_"), "servers": servers,
            "directory_server": "main"}},
    }


@pytest.fixture
def fleet_settings(pg_database: str, pg_clusters: dict[str, Any],
                   schema_prefix: str) -> Settings:
    return settings_from_mapping(fleet_mapping(pg_database, pg_clusters, schema_prefix),
                                 "<test fleet>")


@pytest.fixture
def fleet_manager(fleet_settings: Settings) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    mgr = TenantDatabaseManager(fleet_settings)
    yield mgr
    TenantDatabaseManager.reset()


@pytest.fixture
def fleet_config_file(pg_database: str, pg_clusters: dict[str, Any], schema_prefix: str,
                      tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet_mapping(pg_database, pg_clusters, schema_prefix),
                                   sort_keys=False))
    return path


def server_connect(settings: Settings, server: str) -> Any:
    """psycopg2 autocommit connection to one fleet server, for checking from outside."""
    pg = settings.server_settings[server]
    conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database)
    conn.autocommit = True
    return conn


def cluster_warning(row: Any) -> bool:
    """Whether a verify-isolation row (CheckResult or JSON dict) is a WARN that any
    deployment on a shared cluster may get from roles it does not own: a login role that is
    a superuser or bypasses RLS (this machine has ``root``; other tests create some)."""
    def get(key: str) -> Any:
        return row[key] if isinstance(row, dict) else getattr(row, key)
    return (str(get("status")) == "WARN" and get("check") == "roles" and get("tenant") == "*"
            and str(get("detail")).startswith("login role "))


from citus_support import citus_cluster, citus_config_file, citus_manager, citus_settings  # noqa: E402, F401


@pytest.fixture(scope="session", autouse=True)
def lint_render_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The lint's render cache in the session's temp dir, not the user's ~/.cache."""
    from docex_ops.lint.cache import CACHE_ENV

    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("lint-cache"))
    yield Path(os.environ[CACHE_ENV])
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous
