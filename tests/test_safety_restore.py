"""Restore trusts only rows; manifests are authenticated (issue 13, deliverables 4 and 5).

Every hostile case asserts that nothing outside the restored tenant changed: a
snapshot of every schema, function, type, trigger and large object of the
database (PostgreSQL), or of every file under the storage root (SQLite), and
the rows of the other tenants, before and after.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backup_data import fill_tenant
from docs_support import write_config
from json_support import json_data
from restore_support import Env, edit_pg_archive, recompute, snapshot

from docex_ops.backends.catalog import without_names
from docex_ops.backup import read_manifest
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, StepOptions, TenantStep, migrate_tenant


def _env(settings: Settings, tmp_path: Path) -> Iterator[Env]:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    yield Env(manager, write_config(settings, tmp_path / f"{settings.db_type}.yaml"), tmp_path)
    TenantDatabaseManager.reset()


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> Iterator[Env]:
    yield from _env(settings, tmp_path)


@pytest.fixture
def pg(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[Env]:
    yield from _env(settings_factory("postgresql"), tmp_path)


@pytest.fixture
def sq(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[Env]:
    yield from _env(settings_factory("sqlite"), tmp_path)


@pytest.fixture
def conn_if_pg(kind: str, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("pg_conn") if kind == "postgresql" else None


def _two_tenants(env: Env) -> None:
    for tenant_id in ("a", "b"):
        env.manager.provision(tenant_id)
        fill_tenant(env.manager, tenant_id, tag=tenant_id, big=False)


def _refused_everywhere(env: Env, manifest: Path, *named: str) -> None:
    """restore --as, restore over the tenant itself, and verify --restore-check all refuse,
    each naming what they found."""
    for args in (("backup", "restore", str(manifest), "--as", "x"),
                 ("backup", "restore", str(manifest), "--force"),
                 ("backup", "verify", str(manifest), "--restore-check")):
        code, out = env.run(*args)
        assert code == 1, out
        assert all(word in out for word in named), out
        assert "refused" in out, out


# -- PostgreSQL: archives edited by whoever can write to the backup folder ---------------


@pytest.mark.parametrize("attack", ["public", "other_tenant", "security_definer"])
def test_pg_edited_archive_is_refused_and_creates_nothing(pg: Env, pg_conn: Any,
                                                          attack: str) -> None:
    _two_tenants(pg)
    a, b = pg.location("a"), pg.location("b")
    manifest = pg.backup("a")
    sql, schemas, named = {
        "public": ("CREATE TABLE public.planted (x int); INSERT INTO public.planted VALUES (1);"
                   "CREATE FUNCTION public.planted_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                   [a, "public"], ("public",)),
        "other_tenant": (f'CREATE SCHEMA "{b}"; CREATE TABLE "{b}".planted (x int)',
                         [a, b], (b,)),
        "security_definer": (
            f"SET check_function_bodies = off; CREATE FUNCTION \"{a}\".steal() RETURNS text "
            f"LANGUAGE sql SECURITY DEFINER AS $$ SELECT string_agg(id, ',') FROM "
            f'"{b}".document $$', [a], ("FUNCTION", "steal")),
    }[attack]
    edit_pg_archive(manifest, sql, schemas)
    before = snapshot(pg, pg_conn, ["a", "b"])
    _refused_everywhere(pg, manifest, *named)
    assert snapshot(pg, pg_conn, ["a", "b"]) == before


def test_pg_manifest_cannot_point_the_restore_at_public(pg: Env, pg_conn: Any) -> None:
    _two_tenants(pg)
    manifest = pg.backup("a")
    data = json.loads(manifest.read_text())
    data["location"] = "public"
    manifest.write_text(json.dumps(data))
    before = snapshot(pg, pg_conn, ["a", "b"])
    code, out = pg.run("backup", "restore", str(manifest), "--as", "x")
    assert code == 1 and "'public'" in out and "reserved" in out, out
    assert snapshot(pg, pg_conn, ["a", "b"]) == before


def test_pg_tenant_function_in_a_check_constraint_never_runs(pg: Env, pg_conn: Any) -> None:
    """No tampering: the tenant's own plpgsql function, called by a CHECK constraint of one
    of its tables, would write into tenant b when run by docex-ops' restore."""
    _two_tenants(pg)
    a, b = pg.location("a"), pg.location("b")
    with pg_conn.cursor() as cur:
        cur.execute(f"""
            CREATE FUNCTION "{a}".plant() RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN
              IF current_setting('application_name') LIKE 'docex-ops%' THEN
                INSERT INTO "{b}".docbasket (id, name, storage_config, status, created_at,
                                             updated_at)
                VALUES (md5(random()::text), md5(random()::text), '{{}}', 'planted', now(),
                        now());
              END IF;
              RETURN true;
            END $$;
            ALTER TABLE "{a}".docbasket ADD CONSTRAINT planted CHECK ("{a}".plant())""")
    manifest = pg.backup("a")
    before = snapshot(pg, pg_conn, ["a", "b"])
    _refused_everywhere(pg, manifest, "FUNCTION", "plant")
    assert snapshot(pg, pg_conn, ["a", "b"]) == before


def test_pg_extra_table_needs_the_flag_and_comes_back_whole(pg: Env, pg_conn: Any) -> None:
    _two_tenants(pg)
    a = pg.location("a")
    with pg_conn.cursor() as cur:
        cur.execute(f"""
            CREATE TABLE "{a}".invoices (id serial PRIMARY KEY,
                document_id varchar(36) REFERENCES "{a}".document (id),
                amount int NOT NULL CHECK (amount >= 0), note text DEFAULT 'n');
            CREATE INDEX invoices_amount ON "{a}".invoices (amount);
            CREATE INDEX custom_document_name ON "{a}".document (name);
            INSERT INTO "{a}".invoices (document_id, amount) VALUES ('doc_a', 5), (NULL, 7)""")
    manifest = pg.backup("a")
    before = snapshot(pg, pg_conn, ["a", "b"])
    code, out = pg.run("backup", "restore", str(manifest), "--as", "c")
    assert code == 1 and "invoices" in out and "--allow-extra-objects" in out, out
    assert snapshot(pg, pg_conn, ["a", "b"]) == before

    code, out = pg.run("backup", "restore", str(manifest), "--as", "c", "--allow-extra-objects")
    assert code == 0, out
    c = pg.location("c")
    with pg_conn.cursor() as cur:
        cur.execute(f'SELECT document_id, amount, note FROM "{c}".invoices ORDER BY id')
        assert cur.fetchall() == [("doc_a", 5, "n"), (None, 7, "n")]
        cur.execute(f'INSERT INTO "{c}".invoices (amount) VALUES (1) RETURNING id')
        assert cur.fetchone() == (3,)  # the sequence came back with its value
        cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (c,))
        indexes = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass",
                    (f'"{c}".invoices',))
        assert cur.fetchone() == ("postgres",)  # handed over to the operator
    assert "invoices_amount" in indexes and "custom_document_name" not in indexes
    assert pg.digest("c") == pg.digest("a")
    pg.manager.provision("fresh")
    catalog = pg.manager.backend.catalog("c")
    assert {t: v for t, v in catalog.items() if t != "invoices"} == \
        pg.manager.backend.catalog("fresh")  # DocEX's structure is ours, not the archive's
    objects, _ = snapshot(pg, pg_conn, [])
    assert not [o for o in objects if o[0] == "role of ours"]  # the role is gone


def test_pg_extra_tables_are_made_by_the_restricted_role(pg: Env, pg_conn: Any) -> None:
    """Rows that pass their CHECK only when a docex$restorer_* role inserts them come
    back: the COPY ran as that role, not as the (superuser) operator."""
    _two_tenants(pg)
    a = pg.location("a")
    manifest = pg.backup("a")
    probe = f"docex$restorer_probe{uuid.uuid4().hex[:6]}"
    edit_pg_archive(manifest, f"""
        CREATE ROLE "{probe}";
        CREATE TABLE "{a}".proof (id int PRIMARY KEY,
            CHECK (current_user::text LIKE 'docex$restorer%'));
        GRANT USAGE ON SCHEMA "{a}" TO "{probe}"; GRANT INSERT ON "{a}".proof TO "{probe}";
        SET ROLE "{probe}"; INSERT INTO "{a}".proof VALUES (1), (2); RESET ROLE""",
        [a], roles=(probe,))
    code, out = pg.run("backup", "restore", str(manifest), "--as", "p", "--allow-extra-objects")
    assert code == 0, out
    with pg_conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{pg.location("p")}".proof')
        assert cur.fetchone() == (2,)


@pytest.mark.parametrize("attack", ["reads_other_tenant", "default_calls_other_schema"])
def test_pg_restricted_role_cannot_reach_outside(pg: Env, pg_conn: Any, attack: str) -> None:
    _two_tenants(pg)
    a, b = pg.location("a"), pg.location("b")
    manifest = pg.backup("a")
    fn = f"docex_probe_{uuid.uuid4().hex[:6]}"
    with pg_conn.cursor() as cur:  # exists on the server: the archive only refers to it
        cur.execute(f"CREATE FUNCTION public.{fn}() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    sql, named = {
        "reads_other_tenant": (
            f'CREATE SCHEMA "{b}"; CREATE TABLE "{b}".document (id text);'
            f'CREATE TABLE "{a}".spy (id int, CHECK (query_to_xml('
            f"'SELECT count(*) FROM \"{b}\".document', false, false, '') IS NOT NULL));"
            f'INSERT INTO "{a}".spy VALUES (1)', "permission denied"),
        "default_calls_other_schema": (
            f"CREATE FUNCTION public.{fn}() RETURNS int LANGUAGE sql AS 'SELECT 1';"
            f'CREATE TABLE "{a}".calls (id int, v int DEFAULT public.{fn}());'
            f'INSERT INTO "{a}".calls VALUES (1, 1)', fn),
    }[attack]
    edit_pg_archive(manifest, sql, [a])
    before = snapshot(pg, pg_conn, ["a", "b"])
    for args in (("backup", "restore", str(manifest), "--as", "x", "--allow-extra-objects"),
                 ("backup", "verify", str(manifest), "--restore-check",
                  "--allow-extra-objects")):
        code, out = pg.run(*args)
        assert code == 1 and named in out, out
    assert snapshot(pg, pg_conn, ["a", "b"]) == before
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP FUNCTION public.{fn}()")


# -- SQLite: archives with triggers, views and other tables ------------------------------


@pytest.mark.parametrize("planted", [
    "CREATE TRIGGER planted AFTER INSERT ON document BEGIN DELETE FROM docbasket; END",
    "CREATE VIEW planted AS SELECT * FROM document"])
def test_sqlite_archive_with_trigger_or_view_is_refused(sq: Env, planted: str) -> None:
    _two_tenants(sq)
    manifest = sq.backup("a")
    archive = read_manifest(manifest).archive_path
    with sqlite3.connect(archive) as conn:
        conn.execute(planted)
    conn.close()
    recompute(manifest)
    before = snapshot(sq, None, ["a", "b"])
    _refused_everywhere(sq, manifest, "planted")
    assert snapshot(sq, None, ["a", "b"]) == before


def test_sqlite_extra_table_needs_the_flag(sq: Env) -> None:
    _two_tenants(sq)
    with sqlite3.connect(sq.location("a")) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount INT NOT NULL "
                     "CHECK (amount >= 0), note TEXT DEFAULT 'n')")
        conn.execute("CREATE INDEX invoices_amount ON invoices (amount)")
        conn.execute("INSERT INTO invoices (amount) VALUES (5), (7)")
    conn.close()
    manifest = sq.backup("a")
    before = snapshot(sq, None, ["a", "b"])
    code, out = sq.run("backup", "restore", str(manifest), "--as", "c")
    assert code == 1 and "invoices" in out and "--allow-extra-objects" in out, out
    assert snapshot(sq, None, ["a", "b"]) == before
    code, out = sq.run("backup", "restore", str(manifest), "--as", "c", "--allow-extra-objects")
    assert code == 0, out
    with sqlite3.connect(sq.location("c")) as conn:
        assert conn.execute("SELECT amount, note FROM invoices ORDER BY id").fetchall() == [
            (5, "n"), (7, "n")]
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = "
                            "'invoices_amount'").fetchone() == (1,)
    conn.close()
    assert sq.digest("c") == sq.digest("a")


# -- both backends -------------------------------------------------------------------------


def test_restored_structure_is_docex_ops_own(env: Env) -> None:
    """At head the copy has exactly a provisioned tenant's structure; at an older revision,
    that revision's (the archive's definitions are not used)."""
    env.manager.provision("a")
    fill_tenant(env.manager, "a", big=False)
    manifest = env.backup("a")
    code, out = env.run("backup", "restore", str(manifest), "--as", "c")
    assert code == 0, out
    assert env.manager.backend.catalog("c") == env.manager.backend.catalog("a")
    step = TenantStep("a", env.location("a"), None, "0002_docex_2_9_9", "downgrade")
    assert migrate_tenant(env.manager.backend, MigrationScripts(), step,
                          StepOptions(force=True, safety_dir=str(env.tmp / "safety"))).ok
    old = env.backup("a", "bk-old")
    code, out = env.run("backup", "restore", str(old), "--as", "d")
    assert code == 0, out
    assert without_names(env.manager.backend.catalog("d")) == without_names(
        env.manager.backend.catalog("a"))
    assert env.manager.backend.read_revisions(["d"]) == {"d": "0002_docex_2_9_9"}
    assert env.digest("d") == env.digest("a")


def test_sqlite_restore_check_scratch_is_under_the_storage_root(sq: Env) -> None:
    """A restore check's scratch folder is a held .docex-verify-* folder under the storage
    root (where cleanup looks), gone afterwards."""
    _two_tenants(sq)
    manifest = sq.backup("a")
    seen: list[Path] = []
    from docex_ops.backup import sqlite as sqlite_archive
    real = sqlite_archive.build_file

    def spy(staging: Path, *args: Any) -> None:
        seen.append(staging)
        real(staging, *args)

    sqlite_archive.build_file = spy  # type: ignore[assignment]
    try:
        code, out = sq.run("backup", "verify", str(manifest), "--restore-check")
    finally:
        sqlite_archive.build_file = real  # type: ignore[assignment]
    assert code == 0, out
    root = sq.manager.settings.sqlite.storage_root.resolve()
    assert seen and seen[0].parent.parent == root
    assert seen[0].parent.name.startswith(".docex-verify-")
    assert seen[0].name.startswith(".docex-restore-")
    assert not seen[0].parent.exists()


# -- authenticated manifests ---------------------------------------------------------------


def _key(tmp_path: Path, content: bytes = b"k" * 32, mode: int = 0o600) -> Path:
    path = tmp_path / f"key-{uuid.uuid4().hex[:6]}"
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


def test_signed_manifests_refuse_tampering(env: Env, tmp_path: Path, conn_if_pg: Any) -> None:
    _two_tenants(env)
    signed = env.with_key(_key(tmp_path))
    code, out = env.run("backup", "create", "--tenant", "a", "--dest", str(tmp_path / "s"),
                        config=signed)
    assert code == 0, out
    (manifest,) = (tmp_path / "s").glob("*.manifest.json")
    data = json.loads(manifest.read_text())
    assert data["signature"].startswith("hmac-sha256:") and data["format"] == 2
    code, out = env.run("--format", "json", "backup", "verify", str(manifest), config=signed)
    assert code == 0 and json_data(out)["archives"][0]["authenticated"] is True, out

    unsigned = env.backup("a", "u")
    for name, change in (("wrong", lambda d: d.update(finished_at="2020-01-01")),
                         ("missing", lambda d: d.pop("signature")),
                         ("unsigned", None)):
        path = unsigned if change is None else tmp_path / f"{name}.manifest.json"
        if change is not None:
            edited = json.loads(manifest.read_text())
            change(edited)
            path.write_text(json.dumps(edited))
        before = snapshot(env, conn_if_pg, ["a", "b"])
        for args in (("backup", "verify", str(path)),
                     ("backup", "verify", str(path), "--restore-check"),
                     ("backup", "restore", str(path), "--as", "z")):
            code, out = env.run(*args, config=signed)
            assert code == 1 and str(path) in out, out
            assert ("signature is wrong" if name == "wrong" else "has no signature") in out
        assert snapshot(env, conn_if_pg, ["a", "b"]) == before


def test_unsigned_manifests_are_reported_unauthenticated(env: Env) -> None:
    _two_tenants(env)
    manifest = env.backup("a")
    code, out = env.run("--format", "json", "backup", "verify", str(manifest))
    assert code == 0 and json_data(out)["archives"][0]["authenticated"] is False, out
    code, out = env.run("backup", "verify", str(manifest))
    assert code == 0 and "unauthenticated" in out, out
    code, out = env.run("backup", "restore", str(manifest), "--as", "z")
    assert code == 0 and "unauthenticated" in out, out
    assert env.digest("z") == env.digest("a")


@pytest.mark.parametrize("problem", ["group_readable", "empty", "missing"])
def test_bad_key_file_is_refused(env: Env, tmp_path: Path, problem: str) -> None:
    key = {"group_readable": lambda: _key(tmp_path, mode=0o640),
           "empty": lambda: _key(tmp_path, b"\n"),
           "missing": lambda: tmp_path / "no-such-key"}[problem]()
    code, out = env.run("backup", "verify", str(tmp_path), config=env.with_key(key))
    assert code == 2, out
    assert str(key) in out and {"group_readable": "chmod 600", "empty": "is empty",
                                "missing": "cannot open"}[problem] in out
