"""Guards at the moment of the act (issue 13: 1, 2, 7 and the PostgreSQL half of 8).

Every destructive act (tenants drop, the swap at the end of a restore, a split into an
existing tenant, a downgrade that loses data) checks, inside the transaction that acts
and with the tenant held against writers: rows in any table, objects outside that depend
on it, a foreign schema. Each test also proves that nothing outside the tenant changed.
Real PostgreSQL, real SQLite files, real second processes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from backup_data import fill_tenant, tenant_digest
from conftest import pg_admin_connect
from guard_support import (
    World,
    commit_writer,
    make_world,
    restore_waits_on_a_lock,
    start_writer,
    wait_for,
)

from docex_ops.backends import make_backend
from docex_ops.backup import create_backups, read_manifest
from docex_ops.backup.archivers import make_archiver
from docex_ops.backup.verify import restore_spec
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.tenants.lifecycle import drop_tenant

ORDERS = ("CREATE TABLE orders (id integer PRIMARY KEY, total integer)",
          "INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30)")


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> World:
    return make_world(settings, tmp_path)


@pytest.fixture
def pg_world(settings_factory: Any, tmp_path: Path) -> World:
    return make_world(settings_factory("postgresql"), tmp_path)


def _manager(world: World) -> Any:
    TenantDatabaseManager.reset()
    yield TenantDatabaseManager(world.settings)
    TenantDatabaseManager.reset()


@pytest.fixture
def mgr(world: World) -> Any:
    yield from _manager(world)


@pytest.fixture
def pg_mgr(pg_world: World) -> Any:
    yield from _manager(pg_world)


def _backup(manager: TenantDatabaseManager, tenant_id: str, dest: Path) -> Path:
    (result,) = create_backups(manager, [tenant_id], dest)
    assert result.ok, result.error
    assert result.manifest is not None
    return result.manifest


def _archive_holds_orders(world: World, manifest: Path, rows: int) -> None:
    """The safety backup holds the application's table and its rows, not only DocEX's."""
    archive = read_manifest(manifest).archive_path
    if world.kind == "postgresql":
        listing = subprocess.run(["pg_restore", "-l", str(archive)], capture_output=True,
                                 text=True, check=True).stdout
        assert "TABLE DATA" in listing and " orders " in listing, listing
        data = subprocess.run(["pg_restore", "-a", "-t", "orders", "-f", "-", str(archive)],
                              capture_output=True, text=True, check=True).stdout
        body = data.split("FROM stdin;", 1)[1].split("\\.", 1)[0]
        assert len([line for line in body.splitlines() if line.strip()]) == rows
    else:
        import sqlite3
        conn = sqlite3.connect(f"file:{archive}?mode=ro", uri=True)
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == rows
        conn.close()


def _ok_audit(world: World, action: str) -> dict[str, Any]:
    lines = [a for a in world.audit(action) if a["outcome"] == "ok"]
    assert lines, world.audit(action)
    return lines[-1]


# -- rows in a table DocEX does not have ----------------------------------------------------

def test_drop_counts_rows_in_an_application_table(world: World, mgr: TenantDatabaseManager,
                                                  tmp_path: Path) -> None:
    mgr.provision("a")
    mgr.provision("other")
    fill_tenant(mgr, "other", big=False)
    world.sql("a", *ORDERS)  # DocEX's 11 tables stay empty
    outside = world.snapshot("a")
    everything = world.snapshot()
    TenantDatabaseManager.reset()

    code, out = world.cli("tenants", "drop", "a", "--yes")
    assert code == 1, out
    assert "holds rows (orders 3 rows)" in out and "--force" in out
    assert world.snapshot() == everything  # refused: nothing at all changed
    assert world.audit("tenant.drop")[-1]["outcome"] == "refused"

    safety = tmp_path / "safety"
    code, out = world.cli("tenants", "drop", "a", "--yes", "--force", "--safety-dir", str(safety))
    assert code == 0, out
    (manifest,) = safety.glob("a.*.json")
    assert f"backed it up first to {manifest}" in out
    assert _ok_audit(world, "tenant.drop")["detail"]["safety_backup"] == str(manifest)
    _archive_holds_orders(world, manifest, 3)
    assert world.snapshot("a") == outside
    assert [t.tenant_id for t in TenantDatabaseManager(world.settings).backend.discover()] == [
        "other"]


def test_sqlite_file_that_is_no_database_is_kept_before_a_forced_drop(
        settings_factory: Any, tmp_path: Path) -> None:
    import hashlib
    import os

    world = make_world(settings_factory("sqlite"), tmp_path)
    TenantDatabaseManager.reset()
    TenantDatabaseManager(world.settings).provision("other")
    TenantDatabaseManager.reset()
    junk = Path(world.location("junk"))
    junk.parent.mkdir(parents=True)
    junk.write_bytes(os.urandom(8192))
    digest = hashlib.sha256(junk.read_bytes()).hexdigest()
    outside = world.snapshot("junk")
    code, out = world.cli("tenants", "drop", "junk", "--yes")
    assert code == 1 and "--force to delete it anyway" in out and junk.exists(), out
    safety = tmp_path / "safety"
    code, out = world.cli("tenants", "drop", "junk", "--yes", "--force", "--safety-dir",
                          str(safety))
    assert code == 0, out
    (kept,) = safety.glob("junk.*.unreadable.db")
    assert f"backed it up first to {kept}" in out and not junk.exists()
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == digest
    assert _ok_audit(world, "tenant.drop")["detail"]["safety_backup"] == str(kept)
    assert world.snapshot("junk") == outside


def test_restore_onto_application_rows(world: World, mgr: TenantDatabaseManager,
                                       tmp_path: Path) -> None:
    mgr.provision("src")
    fill_tenant(mgr, "src", tag="src", big=False)
    manifest_path = _backup(mgr, "src", tmp_path / "bk")
    mgr.provision("t")
    world.sql("t", *ORDERS)
    outside = world.snapshot("t")
    everything = world.snapshot()
    TenantDatabaseManager.reset()

    archive = str(read_manifest(manifest_path).archive_path)
    code, out = world.cli("backup", "restore", archive, "--as", "t")
    assert code == 1, out
    assert "holds rows (orders 3 rows)" in out and "--force" in out
    assert world.snapshot() == everything

    safety = tmp_path / "safety"
    code, out = world.cli("backup", "restore", archive, "--as", "t", "--force",
                          "--safety-dir", str(safety))
    assert code == 0, out
    (manifest,) = safety.glob("t.*.json")
    assert f"backed it up first to {manifest}" in out
    assert _ok_audit(world, "tenant.restore")["detail"]["safety_backup"] == str(manifest)
    _archive_holds_orders(world, manifest, 3)
    manager = TenantDatabaseManager(world.settings)
    assert tenant_digest(manager, "t") == {t: (d.rows, d.checksum) for t, d in
                                      read_manifest(manifest_path).tables.items()}
    assert "orders" not in world.tenant_rows("t")
    assert world.snapshot("t") == outside


# -- a tenant provisioned and written while the restore runs (a second process) ------------

@pytest.mark.parametrize("force", [False, True], ids=["refused", "forced"])
def test_tenant_written_during_a_restore(world: World, mgr: TenantDatabaseManager,
                                         tmp_path: Path, force: bool) -> None:
    """The target does not exist (PostgreSQL) or is empty (SQLite) when the restore
    starts, so the first check passes (on SQLite with --force: replacing any existing
    tenant needs it); a second process provisions and writes it before the swap. The
    swap must see those rows: refuse, or back them up and then replace."""
    mgr.provision("src")
    fill_tenant(mgr, "src", tag="src", big=False)
    manifest_path = _backup(mgr, "src", tmp_path / "bk")
    if world.kind == "sqlite":
        mgr.provision("late")  # empty: SQLite's swap waits for the writer's file lock
    TenantDatabaseManager.reset()
    outside = world.snapshot("late")
    writer = start_writer(world, "late")  # provisioned and written, not yet committed
    try:
        safety = tmp_path / "safety"
        restore = world.spawn("--lock-timeout", "60s", "backup", "restore",
                              str(manifest_path), "--as", "late",
                              *(["--force", "--safety-dir", str(safety)] if force else []))
        if world.kind == "postgresql":
            # the swap waits for the writer's transaction: the first check is long past
            wait_for(lambda: restore_waits_on_a_lock(world.settings.postgres.database),
                     "the restore to wait at its swap", restore)
        elif force:  # without --force the existing (empty) tenant is refused at once
            folder = Path(world.location("late")).parent
            wait_for(lambda: any(p.name != "docex.db" and not p.name.startswith("docex.db-")
                                 for p in folder.iterdir()),
                     "the restore to stage its copy", restore)
        commit_writer(writer)
        out, err = restore.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
    rows = world.tenant_rows("late")
    if not force:
        assert restore.returncode == 1, out + err
        # SQLite: refused at the first check, as an existing tenant (or, once the writer
        # committed, as one holding rows).
        assert "holds rows (docbasket 1 row, orders 2 rows)" in err or (
            world.kind == "sqlite" and "tenant 'late' exists" in err), err
        assert rows["docbasket"] == 1 and rows["orders"] == 2  # the late writes are intact
    else:
        assert restore.returncode == 0, out + err
        (manifest,) = safety.glob("late.*.json")
        assert f"backed it up first to {manifest}" in err
        assert read_manifest(manifest).tables["docbasket"].rows == 1
        _archive_holds_orders(world, manifest, 2)
        assert "orders" not in rows
        assert rows["docbasket"] == read_manifest(manifest_path).tables["docbasket"].rows
    assert world.snapshot("late") == outside


def test_sqlite_target_that_appears_after_staging_is_checked(settings_factory: Any,
                                                             tmp_path: Path) -> None:
    """SQLite, target absent at the start: the swap links the copy in only where no file
    is; one that appeared meanwhile is held and checked like any other."""
    from docex_ops.backends.contents import HoldsRowsError

    world = make_world(settings_factory("sqlite"), tmp_path)
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(world.settings)
    manager.provision("src")
    fill_tenant(manager, "src", big=False)
    manifest = read_manifest(_backup(manager, "src", tmp_path / "bk"))
    archiver = make_archiver(manager.backend)
    spec = restore_spec(manifest, manager.backend, None)
    with archiver.staged(spec, archiver.inspect(spec), "late") as staging:
        manager.provision("late")  # after the restore's first look, before its swap
        world.sql("late", *ORDERS)
        with pytest.raises(HoldsRowsError, match="orders 3 rows"):
            archiver.promote(staging, "late")
    assert world.tenant_rows("late")["orders"] == 3
    TenantDatabaseManager.reset()


# -- never cascade into another tenant -------------------------------------------------------

def test_column_typed_by_another_tenants_domain_survives(pg_world: World, pg_mgr: Any,
                                                         tmp_path: Path) -> None:
    world = pg_world
    a, b = world.location("a"), world.location("b")
    for tenant_id in ("a", "b"):
        pg_mgr.provision(tenant_id)
    manifest_path = _backup(pg_mgr, "a", tmp_path / "bk")
    world.sql("a", "CREATE DOMAIN positive AS integer CHECK (VALUE > 0)")
    world.sql("b", f'CREATE TABLE scores (id integer PRIMARY KEY, v "{a}".positive)',
              "INSERT INTO scores VALUES (1, 5), (2, 7)",
              f'CREATE VIEW peek AS SELECT id FROM "{a}".docbasket')
    everything = world.snapshot()
    TenantDatabaseManager.reset()
    fixes = [f"column v of table {b}.scores (on type {a}.positive): "
             f"ALTER TABLE {b}.scores ALTER COLUMN v TYPE integer",
             f"DROP VIEW {b}.peek"]

    code, out = world.cli("tenants", "drop", "a", "--yes", "--force",
                          "--safety-dir", str(tmp_path / "safety"))
    assert code == 1, out
    assert "refused even with --force" in out and all(f in out for f in fixes), out
    code, out = world.cli("backup", "restore", str(manifest_path), "--as", "a", "--force",
                          "--safety-dir", str(tmp_path / "safety"))
    assert code == 1, out
    assert "refused even with --force" in out and all(f in out for f in fixes), out
    assert world.snapshot() == everything  # b's column, values and view, a: all as they were
    assert not (tmp_path / "safety").exists()  # refused before any backup was taken

    world.sql("b", f"ALTER TABLE {b}.scores ALTER COLUMN v TYPE integer", f"DROP VIEW {b}.peek")
    assert world.cli("tenants", "drop", "a", "--yes")[0] == 0
    assert world.tenant_rows("b")["scores"] == 2


def test_the_swap_itself_checks_dependents(pg_world: World, pg_mgr: Any,
                                           tmp_path: Path) -> None:
    """A dependency made after the restore's first check is found at the swap."""
    from docex_ops.backends.contents import DependentsError

    world = pg_world
    pg_mgr.provision("a")
    pg_mgr.provision("b")
    manifest = read_manifest(_backup(pg_mgr, "a", tmp_path / "bk"))
    archiver = make_archiver(pg_mgr.backend)
    spec = restore_spec(manifest, pg_mgr.backend, None)
    with archiver.staged(spec, archiver.inspect(spec), "a") as staging:
        world.sql("b", f'CREATE VIEW peek AS SELECT id FROM "{world.location("a")}".document')
        everything = world.snapshot()
        with pytest.raises(DependentsError, match=f"DROP VIEW {world.location('b')}.peek"):
            archiver.promote(staging, "a")
        assert world.snapshot() == everything  # the staged copy is still there, a untouched
    archiver.dispose()


def test_what_slips_in_between_check_and_drop_rolls_the_drop_back(pg_world: World,
                                                                  pg_mgr: Any) -> None:
    """Objects PostgreSQL lets appear after the check (a table created in the schema, a
    column typed by its domain elsewhere) are found after the drop, before the commit."""
    from docex_ops.backends.contents import HoldsRowsError, TenantChangedError, TenantContents

    world = pg_world
    a = world.location("a")
    pg_mgr.provision("a")
    pg_mgr.provision("b")
    world.sql("a", "CREATE DOMAIN positive AS integer")

    def sneak(statement: str, tenant: str) -> Any:
        def guard(contents: TenantContents) -> None:
            assert not contents.holders and not contents.dependents
            world.sql(tenant, statement)  # another connection, committed
        return guard

    with pytest.raises(TenantChangedError, match="sneaky"):
        pg_mgr.backend.drop("a", sneak("CREATE TABLE sneaky AS SELECT 1 AS x", "a"))
    assert world.tenant_rows("a")["sneaky"] == 1
    with pytest.raises(HoldsRowsError, match="sneaky 1 row"):
        drop_tenant(pg_mgr, "a")  # checked again: now it is seen, and refused
    world.sql("a", "DROP TABLE sneaky")

    with pytest.raises(TenantChangedError, match=f"column c of table {world.location('b')}"):
        pg_mgr.backend.drop("a", sneak(f'CREATE TABLE t (c "{a}".positive)', "b"))
    assert "t" in world.tenant_rows("b") and "docbasket" in world.tenant_rows("a")


# -- split into an existing tenant ---------------------------------------------------------

@pytest.mark.parametrize("route", ["postgresql-to-postgresql", "sqlite-to-sqlite",
                                   "sqlite-to-postgresql"])
def test_split_into_a_tenant_with_application_rows(route: str, settings_factory: Any,
                                                   tmp_path: Path, request: Any) -> None:
    import uuid

    from split_data import MAPPING, make_pg_source, make_sqlite_source

    source_kind, target_kind = route.split("-to-")
    world = make_world(settings_factory(target_kind), tmp_path)
    if source_kind == "postgresql":
        schema = f"src_{uuid.uuid4().hex[:8]}"
        source = ["--source", make_pg_source(request.getfixturevalue("pg_conn"),
                                             request.getfixturevalue("pg_database"), schema),
                  "--source-schema", schema]
    else:
        source = ["--source", str(make_sqlite_source(tmp_path / "single.db"))]
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    TenantDatabaseManager.reset()
    TenantDatabaseManager(world.settings).provision("globex")
    TenantDatabaseManager.reset()
    world.sql("globex", *ORDERS)
    globex = world.snapshot("acme")
    code, report, err = world.cli_json("split", "run", *source, "--mapping", str(mapping),
                                       "--unmapped", "skip", "--cross-tenant-edges", "drop",
                                       "--continue-on-error")
    assert code == 1, report
    status = {r["tenant"]: (r["status"], r["error"]) for r in report["results"]}
    assert status["acme"][0] == "copied"
    assert status["globex"][0] == "refused" and "orders 3 rows" in status["globex"][1]
    assert world.snapshot("acme") == globex  # globex (and everything else) untouched


# -- a downgrade that drops data ------------------------------------------------------------

def test_downgrade_that_loses_data(world: World, mgr: TenantDatabaseManager,
                                   tmp_path: Path) -> None:
    mgr.provision("a")
    mgr.provision("other")
    fill_tenant(mgr, "a", big=False)
    fill_tenant(mgr, "other", tag="o", big=False)
    before = tenant_digest(mgr, "a")
    outside = world.snapshot("a")
    everything = world.snapshot()
    TenantDatabaseManager.reset()

    code, out = world.cli("migrate", "downgrade", "base", "--tenant", "a")
    assert code == 1, out
    assert "holds rows (doc_events 1 row" in out
    assert "would lose data (dropping every DocEX table deletes all of the tenant's data" in out
    assert world.snapshot() == everything

    safety = tmp_path / "safety"
    code, out = world.cli("migrate", "downgrade", "base", "--tenant", "a", "--force",
                          "--safety-dir", str(safety))
    assert code == 0, out
    (manifest,) = safety.glob("a.*.json")
    assert f"tenant a: backed up first to {manifest}" in out
    line = [m for m in world.audit("tenant.migrate") if m["tenant"] == "a"][-1]
    assert line["outcome"] == "ok" and line["detail"]["safety_backup"] == str(manifest)
    assert {t: (d.rows, d.checksum) for t, d in read_manifest(manifest).tables.items()} == before
    assert not set(world.tenant_rows("a")) & set(TABLE_NAMES)
    assert world.snapshot("a") == outside


# -- foreign schemas and files ----------------------------------------------------------------

def test_a_foreign_schema_is_never_a_tenant(world: World, mgr: TenantDatabaseManager,
                                            tmp_path: Path) -> None:
    mgr.provision("good")
    manifest_path = _backup(mgr, "good", tmp_path / "bk")
    create = [f'CREATE SCHEMA "{world.location("alien")}"'] if world.kind == "postgresql" else []
    world.sql("alien", *create, *ORDERS)
    TenantDatabaseManager.reset()
    everything = world.snapshot()

    code, listed, err = world.cli_json("tenants", "list")
    assert code == 0, err
    alien = {t["tenant"]: t for t in listed["tenants"]}["alien"]
    assert alien["state"] == "foreign" and "holds tables orders and none of DocEX's" in \
        alien["detail"]
    code, out = world.cli("tenants", "show", "alien")
    assert "foreign" in out

    code, report, err = world.cli_json("migrate", "upgrade")
    assert code == 0, err
    assert {r["tenant"]: r["status"] for r in report["tenants"]} == {"alien": "skipped"}
    code, out = world.cli("migrate", "upgrade", "--tenant", "alien")
    assert code == 1 and "not DocEX tenants, left alone: alien" in out
    code, status, err = world.cli_json("migrate", "status", "--check")
    assert code == 0 and status["counts"] == {"current": 1, "foreign": 1}, (status, err)
    code, adopted, err = world.cli_json("migrate", "adopt")
    assert code == 0 and [r["status"] for r in adopted["tenants"]] == ["skipped"], adopted

    for args in (("tenants", "provision", "alien"),
                 ("tenants", "drop", "alien", "--yes", "--force",
                  "--safety-dir", str(tmp_path / "safety")),
                 ("backup", "restore", str(manifest_path), "--as", "alien", "--force",
                  "--safety-dir", str(tmp_path / "safety"))):
        code, out = world.cli(*args)
        assert code == 1 and "not a DocEX tenant" in out and "orders" in out, (args, out)
    manager = TenantDatabaseManager(world.settings)
    with pytest.raises(RuntimeError, match="not a DocEX tenant"):
        manager.get_tenant_engine("alien")  # first access never provisions into it
    TenantDatabaseManager.reset()
    assert world.snapshot() == everything
    assert world.tenant_rows("alien") == {"orders": 3}


# -- a lock held by another connection (PostgreSQL) -------------------------------------------

@pytest.fixture
def locked_a(pg_world: World, pg_mgr: Any, request: Any) -> Any:
    """Tenants a and b; another connection holds ACCESS EXCLUSIVE on one of a's tables."""
    for tenant_id in ("a", "b"):
        pg_mgr.provision(tenant_id)
    fill_tenant(pg_mgr, "b", big=False)
    TenantDatabaseManager.reset()
    holder = pg_admin_connect(pg_world.settings.postgres.database)
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute(f'LOCK TABLE "{pg_world.location("a")}"."{request.param}" '
                    "IN ACCESS EXCLUSIVE MODE")
    yield pg_world
    holder.rollback()
    holder.close()


@pytest.mark.parametrize("locked_a", ["document", "alembic_version"], indirect=True)
def test_list_and_show_go_on_past_a_locked_tenant(locked_a: World) -> None:
    world = locked_a
    code, listed, err = world.cli_json("--lock-timeout", "1s", "tenants", "list")
    assert code == 1
    states = {t["tenant"]: t["state"] for t in listed["tenants"]}
    assert states == {"a": "locked", "b": "versioned"}
    assert "a (locked)" in err and "is locked by another connection beyond the lock timeout " \
        "(1s): table" in err and "AccessExclusiveLock" in err
    code, out = world.cli("--lock-timeout", "1s", "tenants", "show", "a")
    assert code == 1 and "locked" in out
    code, shown, err = world.cli_json("--lock-timeout", "1s", "tenants", "show", "b")
    assert code == 0 and shown["rows"]["document"] == 2, err


@pytest.mark.parametrize("locked_a", ["document"], indirect=True)
def test_backup_and_drop_go_on_past_a_locked_tenant(locked_a: World, tmp_path: Path) -> None:
    world = locked_a
    dest = tmp_path / "bk"
    code, rows, err = world.cli_json("--lock-timeout", "1s", "backup", "create", "--all",
                                     "--dest", str(dest))
    assert code == 1, err
    by_tenant = {r["tenant"]: r for r in rows["backups"]}
    assert by_tenant["b"]["status"] == "ok"
    assert by_tenant["a"]["status"] == "FAILED" and "locked" in by_tenant["a"]["error"]
    assert len(list(dest.glob("b.*.json"))) == 1 and not list(dest.glob("a.*.json"))
    outside = world.snapshot("a")  # a's rows cannot be counted while the lock is held
    code, out = world.cli("--lock-timeout", "1s", "tenants", "drop", "a", "--yes", "--force",
                          "--safety-dir", str(tmp_path / "safety"))
    assert code == 1, out
    assert "is locked by another connection beyond the lock timeout (1s)" in out
    assert "held in AccessExclusiveLock" in out and not (tmp_path / "safety").exists()
    # The drop's own transaction waits no longer either (its locks, under lock_timeout):
    from docex_ops.backends.base import TenantLockedError
    from docex_ops.backends.postgres import PostgresBackend

    backend = PostgresBackend(world.settings)
    with pytest.raises(TenantLockedError, match="nothing was changed"):
        backend.drop("a")
    backend.dispose()
    assert world.snapshot("a") == outside
    assert "a" in {t.tenant_id for t in make_backend(world.settings).discover()}
