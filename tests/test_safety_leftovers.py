"""No leftovers, and none hidden: kill -9 of docex-ops at several points of restore,
split run, backup create and adopt; then `cleanup --dry-run` lists what the killed
process left, `cleanup` removes it, `tenants list` is what it was before the killed
command, and no tenant's data changed. A scratch object someone holds is kept.

Every docex-ops here runs in its own process with a temp folder of the test's own
(TMPDIR), so cleanups of parallel test runs never meet. The kill moment is found
by polling for the scratch object (or the statement loading it), never by sleeping.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docs_support import write_config
from json_support import json_data

from docex_ops.backends import scratch
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager

DOCUMENTS = 15_000  # ~17 MB of rows: a restore or a dump lasts long enough to be caught


@dataclass
class Deployment:
    kind: str
    settings: Settings
    config: Path
    tmp: Path          # the subprocesses' TMPDIR
    pg: Any = None     # psycopg2 autocommit connection (PostgreSQL)

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(self.tmp))

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "docex_ops.cli", "--config",
                                 str(self.config), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env())

    def run(self, *args: str) -> tuple[int, Any, str]:
        """docex-ops --format json ARGS in its own process: (exit code, JSON, stderr)."""
        done = subprocess.run([sys.executable, "-m", "docex_ops.cli", "--config",
                               str(self.config), "--format", "json", *args],
                              capture_output=True, text=True, env=self.env(), timeout=300)
        try:
            return done.returncode, json_data(done.stdout), done.stderr
        except ValueError:
            raise AssertionError(f"no JSON from {args}: {done.stdout}{done.stderr}") from None

    @property
    def root(self) -> Path:
        return self.settings.sqlite.storage_root

    @property
    def prefix(self) -> str:
        return self.settings.postgres.schema_template.split("{", 1)[0]

    def schema(self, tenant: str) -> str:
        return self.prefix + tenant

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.pg.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

    def scratch_schemas(self, purpose: str = "") -> list[str]:
        return [r[0] for r in self.sql("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                       f"{scratch.PG_MARK}{purpose}%")]


@pytest.fixture(params=["postgresql", "sqlite"])
def deployment(request: pytest.FixtureRequest, settings_factory: Callable[..., Settings],
               tmp_path: Path) -> Iterator[Deployment]:
    settings = settings_factory(request.param)
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    d = Deployment(request.param, settings, write_config(settings, tmp_path / "config.yaml"),
                   tmp)
    if request.param == "postgresql":
        d.pg = request.getfixturevalue("pg_conn")
    TenantDatabaseManager.reset()
    yield d
    TenantDatabaseManager.reset()
    if d.pg is not None:  # what a failed test left must not reach the next one
        for name in d.scratch_schemas():
            d.sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _provision(d: Deployment, *tenants: str, documents: int = 0) -> None:
    """Tenants with one basket each, ``documents`` documents in the first one."""
    from backup_data import fill_tenant

    manager = TenantDatabaseManager(d.settings)
    for i, tenant in enumerate(tenants):
        fill_tenant(manager, tenant, tenant, big=False)
        if i == 0 and documents:
            _add_documents(d, tenant, documents)
    TenantDatabaseManager.reset()


def _add_documents(d: Deployment, tenant: str, count: int) -> None:
    cols = ("id, basket_id, name, source, path, document_type, raw_content, checksum, status, "
            "processing_attempts, created_at, updated_at")
    if d.kind == "postgresql":
        d.sql(f'INSERT INTO "{d.schema(tenant)}".document ({cols}) SELECT \'doc_bulk_\' || g, '
              f"'bas_{tenant}', 'n' || g, 's', 'p', 'file', repeat(md5(g::text), 36), "
              "md5(g::text) || md5(g::text), 'new', 0, now(), now() "
              "FROM generate_series(1, %s) g", count)
        return
    import sqlite3

    conn = sqlite3.connect(d.root / f"tenant_{tenant}" / "docex.db")
    conn.execute(f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g "
                 f"WHERE n < {int(count)}) INSERT INTO document ({cols}) SELECT "
                 f"'doc_bulk_' || n, 'bas_{tenant}', 'n' || n, 's', 'p', 'file', "
                 "hex(randomblob(576)), hex(randomblob(32)), 'new', 0, "
                 "'2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM g")
    conn.commit()
    conn.close()


def _data(d: Deployment) -> dict[str, Any]:
    """Every tenant schema's tables (count and md5 of all rows), or every regular file
    under the storage root but scratch ones (sha256): what must not change."""
    if d.kind == "sqlite":
        return {str(p.relative_to(d.root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(d.root.rglob("*")) if p.is_file() and not p.is_symlink()
                and not any(scratch.is_scratch_file(part) for part in p.parts)
                and not p.name.startswith("_docex_ops")}
    tables = d.sql("SELECT schemaname, tablename FROM pg_tables WHERE schemaname LIKE %s "
                   "ORDER BY 1, 2", d.prefix.replace("_", r"\_") + "%")
    found = {}
    for schema, table in tables:
        found[f"{schema}.{table}"] = d.sql(
            f'SELECT count(*), md5(coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text), '
            f"'')) FROM \"{schema}\".\"{table}\" t")[0]
    return found


def _tenants(d: Deployment) -> list[tuple[Any, ...]]:
    code, out, err = d.run("tenants", "list")
    assert code == 0, err
    return [(t["tenant"], t["location"], t["state"], t["revision"], t["tables"])
            for t in out["tenants"]]


def _kill_when(proc: subprocess.Popen[str], moment: Callable[[], bool],
               timeout: float = 120) -> None:
    """SIGKILL ``proc`` as soon as ``moment()`` is true (polled every few ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if moment():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the command ended (exit {proc.returncode}) before the "
                                 f"moment to kill it: {out}{err}")
        time.sleep(0.003)
    proc.kill()
    raise AssertionError("the moment to kill never came")


def _marked(folder: Path, purpose: str) -> Callable[[], bool]:
    """A scratch file or folder of ``purpose`` exists in ``folder`` or one level below."""
    mark = f"{scratch.FILE_MARK}{purpose}-"
    return lambda: any(p.name.startswith(mark) for p in (*folder.glob(".*"),
                                                         *folder.glob("*/.*")))


def _cleanup_after_kill(d: Deployment, purposes: set[str], before_tenants: list[Any],
                        before_data: dict[str, Any], *backups: Path) -> list[dict[str, Any]]:
    """dry-run lists the leftovers (of ``purposes``), cleanup removes them, then nothing
    is left and the tenants and their data are as before the killed command."""
    extra = [a for b in backups for a in ("--backups", str(b))]
    code, dry, err = d.run("cleanup", "--dry-run", *extra)
    assert code == 0, err
    listed = dry["objects"]
    assert purposes <= {o["purpose"] for o in listed}, listed
    assert {o["action"] for o in listed} <= {"would remove"}, listed
    still = {o["object"] for o in listed}
    assert all(_exists(d, name) for name in still)  # a dry run removes nothing
    code, done, err = d.run("cleanup", *extra)
    assert code == 0, err
    assert {o["object"]: o["action"] for o in done["objects"]} == \
        {name: "removed" for name in still}
    assert err.count('"scratch.remove"') == len(still)  # one audit line per removal
    code, again, err = d.run("cleanup", "--dry-run", *extra)
    assert code == 0 and again["objects"] == [], again
    assert not any(_exists(d, name) for name in still)
    assert _tenants(d) == before_tenants
    assert _data(d) == before_data
    return listed


def _exists(d: Deployment, name: str) -> bool:
    if name.startswith(scratch.PG_MARK):
        return bool(d.scratch_schemas(name[len(scratch.PG_MARK):]))
    return os.path.lexists(name)


def _backup(d: Deployment, tenant: str, dest: Path) -> Path:
    code, out, err = d.run("backup", "create", "--tenant", tenant, "--dest", str(dest))
    assert code == 0, err
    return Path(out["backups"][0]["manifest"])


# -- restore --------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["mid-load", "scratch-complete"])
def test_killed_restore(deployment: Deployment, moment: str, tmp_path: Path) -> None:
    d = deployment
    _provision(d, "big", "other", documents=DOCUMENTS)
    manifest = _backup(d, "big", tmp_path / "backups")
    before_tenants, before_data = _tenants(d), _data(d)
    proc = d.spawn("backup", "restore", str(manifest), "--as", "copy")
    if d.kind == "postgresql":
        if moment == "mid-load":  # the rows are streaming into the scratch schema
            _kill_when(proc, lambda: bool(d.sql(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY %%docex$restore%%'")))
        else:  # the load committed: the copy is checked against the manifest
            _kill_when(proc, lambda: bool(d.scratch_schemas("restore")))
    else:
        folder = d.root / "tenant_copy"
        archive = Path(str(manifest).replace(".manifest.json", ".sqlite"))
        if moment == "mid-load":
            _kill_when(proc, _marked(d.root, "restore"))
        else:  # the copy has all its pages: checked now
            _kill_when(proc, lambda: any(p.stat().st_size >= archive.stat().st_size
                                         for p in folder.glob(".docex-restore-*.db")))
    time.sleep(0.5)  # let the server notice the dead client and roll its transaction back
    # Mid-load a PostgreSQL copy is built in one transaction that dies with the process:
    # nothing is left. Otherwise only the restore's scratch is left, and cleanup takes it.
    expected = {"restore"} if moment == "scratch-complete" or d.kind == "sqlite" else set()
    listed = _cleanup_after_kill(d, expected, before_tenants, before_data)
    assert {o["purpose"] for o in listed} == expected, listed


# -- split ----------------------------------------------------------------------------------


def test_killed_split_run_leaves_no_phantom_tenant(deployment: Deployment,
                                                   tmp_path: Path) -> None:
    from split_data import MAPPING, make_pg_source, make_sqlite_source

    d = deployment
    _provision(d, "keep")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    if d.kind == "postgresql":
        import uuid

        source_schema = f"src_{uuid.uuid4().hex[:8]}"
        source = ["--source", make_pg_source(d.pg, d.settings.postgres.database, source_schema),
                  "--source-schema", source_schema]
        moment = lambda: bool(d.scratch_schemas("reference"))  # noqa: E731
        purposes = {"reference"}
    else:
        source = ["--source", str(make_sqlite_source(tmp_path / "single.db"))]
        moment = _marked(d.root, "reference")
        purposes = {"split", "reference"}  # the snapshot copy and the reference tenant
    before_tenants, before_data = _tenants(d), _data(d)
    proc = d.spawn("split", "run", *source, "--mapping", str(mapping), "--unmapped", "skip",
                   "--cross-tenant-edges", "drop")
    _kill_when(proc, moment)
    _cleanup_after_kill(d, purposes, before_tenants, before_data)


# -- backup ---------------------------------------------------------------------------------


def test_killed_backup_leaves_a_partial_that_cleanup_removes(deployment: Deployment,
                                                            tmp_path: Path) -> None:
    d = deployment
    _provision(d, "big", "other", documents=DOCUMENTS)
    dest = tmp_path / "backups"
    before_tenants, before_data = _tenants(d), _data(d)
    proc = d.spawn("backup", "create", "--all", "--dest", str(dest))
    _kill_when(proc, lambda: any(p.name.endswith(".partial") for p in dest.glob(".*")))
    if d.kind == "postgresql":  # the orphaned pg_dump writes on: let it end first
        deadline = time.monotonic() + 60
        while d.sql("SELECT 1 FROM pg_stat_activity WHERE application_name = 'pg_dump'") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    listed = _cleanup_after_kill(d, {"partial"}, before_tenants, before_data, dest)
    assert all(o["where"] == str(dest) for o in listed if o["purpose"] == "partial")
    assert not [p for p in dest.iterdir() if p.name.endswith(".partial")]


# -- adopt ----------------------------------------------------------------------------------


def test_killed_adopt_leaves_no_reference_tenant(deployment: Deployment) -> None:
    d = deployment
    _provision(d, "old", "other")
    if d.kind == "postgresql":  # DocEX made it: tables, no version table
        d.sql(f'DROP TABLE "{d.schema("old")}".alembic_version')
        moment = lambda: bool(d.scratch_schemas("reference"))  # noqa: E731
    else:
        import sqlite3

        conn = sqlite3.connect(d.root / "tenant_old" / "docex.db")
        conn.execute("DROP TABLE alembic_version")
        conn.commit()
        conn.close()
        moment = _marked(d.root, "reference")
    before_tenants, before_data = _tenants(d), _data(d)
    _kill_when(d.spawn("migrate", "adopt"), moment)
    _cleanup_after_kill(d, {"reference"}, before_tenants, before_data)


# -- held objects are kept ------------------------------------------------------------------


def test_a_held_scratch_object_is_kept(deployment: Deployment, tmp_path: Path) -> None:
    d = deployment
    _provision(d, "a")
    dest = tmp_path / "backups"
    dest.mkdir()
    orphan = dest / scratch.new_file_name("partial", scratch.PARTIAL_SUFFIX)
    orphan.write_bytes(b"a killed backup's half")
    with scratch.hold_new_file(dest, "partial", scratch.PARTIAL_SUFFIX) as held_file:
        held_schema = None
        if d.kind == "postgresql":
            from sqlalchemy import create_engine

            engine = create_engine(d.settings.postgres.url())
            stack = scratch.hold_new_schema(engine, "restore")
            held_schema = stack.__enter__()
            d.sql(f'CREATE SCHEMA "{held_schema}"')
        try:
            code, out, err = d.run("cleanup", "--backups", str(dest))
            assert code == 0, err
            actions = {o["object"]: o["action"] for o in out["objects"]}
            assert actions[str(held_file)] == "kept: held" and held_file.exists()
            assert actions[str(orphan)] == "removed" and not orphan.exists()
            if held_schema is not None:
                assert actions[held_schema] == "kept: held"
                assert d.scratch_schemas(held_schema[len(scratch.PG_MARK):])
        finally:
            if held_schema is not None:
                d.sql(f'DROP SCHEMA "{held_schema}"')
                stack.__exit__(None, None, None)
                engine.dispose()


def test_a_running_restore_keeps_its_copy_through_a_cleanup(deployment: Deployment,
                                                            tmp_path: Path) -> None:
    d = deployment
    _provision(d, "big", documents=DOCUMENTS)
    manifest = _backup(d, "big", tmp_path / "backups")
    proc = d.spawn("backup", "restore", str(manifest), "--as", "copy")
    if d.kind == "postgresql":
        moment = lambda: bool(d.sql(  # noqa: E731
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = %s", scratch.SCRATCH_NAMESPACE))
    else:
        moment = _marked(d.root, "restore")
    deadline = time.monotonic() + 120
    while not moment() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.003)
    code, out, err = d.run("cleanup")
    assert code == 0, err
    assert {o["action"] for o in out["objects"]} <= {"kept: held"}, out
    _, restore_err = proc.communicate(timeout=300)
    assert proc.returncode == 0, restore_err
    code, shown, err = d.run("tenants", "show", "copy")
    assert code == 0 and shown["rows"]["document"] == DOCUMENTS + 2, err


# -- reported, never a tenant ----------------------------------------------------------------


def test_list_and_verify_isolation_report_leftovers(deployment: Deployment) -> None:
    d = deployment
    _provision(d, "a")
    if d.kind == "postgresql":
        name = scratch.new_schema_name("restore")
        d.sql(f'CREATE SCHEMA "{name}"')
        d.sql(f'CREATE TABLE "{name}".document (id text)')
    else:
        name = str(d.root / "tenant_a" / scratch.new_file_name("restore", ".db"))
        Path(name).write_bytes((d.root / "tenant_a" / "docex.db").read_bytes())
    code, listed, err = d.run("tenants", "list")
    assert code == 0, err
    assert [t["tenant"] for t in listed["tenants"]] == ["a"]
    assert [(x["object"], x["purpose"], x["held"]) for x in listed["leftovers"]] == \
        [(name, "restore", False)]
    table = subprocess.run([sys.executable, "-m", "docex_ops.cli", "--config", str(d.config),
                            "tenants", "list"], capture_output=True, text=True, env=d.env())
    assert "1 scratch object(s) are not tenants" in table.stderr and name in table.stderr
    code, report, err = d.run("verify-isolation", "--check", "leftovers", "--fail-on", "warn")
    assert code == 1, err
    assert [(r["status"], r["object"]) for r in report["results"]] == [("WARN", name)]
    assert "docex-ops cleanup" in report["results"][0]["detail"]
    assert d.run("cleanup")[0] == 0
    code, report, err = d.run("verify-isolation", "--check", "leftovers", "--fail-on", "warn")
    assert code == 0 and [r["status"] for r in report["results"]] == ["PASS"], err


@pytest.mark.parametrize("deployment", ["postgresql"], indirect=True)  # SQLite: no such links
def test_cleanup_never_cascades_into_a_tenant(deployment: Deployment) -> None:
    d = deployment
    _provision(d, "a")
    name = scratch.new_schema_name("restore")
    d.sql(f'CREATE SCHEMA "{name}"')
    d.sql(f'CREATE DOMAIN "{name}".code AS text')
    d.sql(f'ALTER TABLE "{d.schema("a")}".docbasket ADD COLUMN code "{name}".code')
    d.sql(f"UPDATE \"{d.schema('a')}\".docbasket SET code = 'kept'")
    before = _data(d)
    code, out, err = d.run("cleanup")
    assert code == 1
    (item,) = [o for o in out["objects"] if o["object"] == name]
    assert item["action"] == "failed" and d.schema("a") in item["error"], item
    assert _data(d) == before and d.scratch_schemas(name[len(scratch.PG_MARK):])
    d.sql(f'ALTER TABLE "{d.schema("a")}".docbasket DROP COLUMN code')


def test_scratch_names_and_config_stay_apart(tmp_path: Path) -> None:
    """A scratch folder never matches a SQLite template, whatever the template."""
    from docex_ops.tenancy import tenant_id_pattern

    for template in ("{tenant_id}/docex.db", "tenant_{tenant_id}/docex.db", "{tenant_id}.db"):
        pattern = tenant_id_pattern(str(tmp_path / template))
        for purpose in ("reference", "split", "restore", "check", "partial"):
            assert not pattern.fullmatch(str(tmp_path / scratch.new_file_name(purpose)
                                             / "tenant_scratch" / "docex.db"))
            assert not pattern.fullmatch(str(tmp_path / scratch.new_file_name(purpose, ".db")))


def test_every_server_of_a_fleet_is_cleaned(fleet_settings: Settings, fleet_config_file: Path,
                                            tmp_path: Path) -> None:
    from conftest import server_connect

    d = Deployment("postgresql", fleet_settings, fleet_config_file, tmp_path)
    names = {}
    for server in ("main", "b"):
        conn = server_connect(fleet_settings, server)
        names[server] = scratch.new_schema_name("restore")
        with conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{names[server]}"')
        conn.close()
    code, listed, err = d.run("tenants", "list")
    assert code == 0, err
    assert {(x["where"], x["object"]) for x in listed["leftovers"]} >= \
        {(s, n) for s, n in names.items()}
    code, out, err = d.run("cleanup")
    assert code == 0, err
    assert {(o["where"], o["object"], o["action"]) for o in out["objects"]} >= \
        {(s, n, "removed") for s, n in names.items()}
    for server, name in names.items():
        conn = server_connect(fleet_settings, server)
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,))
            assert cur.fetchone() is None
        conn.close()
