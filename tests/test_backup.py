"""Backup, verify and restore against real PostgreSQL and real SQLite files."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from backup_data import fill_tenant, tenant_digest
from click.testing import CliRunner
from json_support import json_data
from sqlalchemy import func, select

from docex_ops.backends.contents import allow_rows
from docex_ops.backup import create_backups, find_manifests, read_manifest
from docex_ops.cli import main
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema import head as s
from docex_ops.schema.names import TABLE_NAMES


def _run(config_file: Path, *args: str) -> tuple[int, str]:
    """(exit code, stdout and stderr); with --format json, stdout alone (the JSON)."""
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.stdout if "json" in args else result.output


def _digest(manager: TenantDatabaseManager, tenant_id: str) -> dict[str, tuple[int, str]]:
    return tenant_digest(manager, tenant_id)


def _backup(manager: TenantDatabaseManager, tenant_id: str, dest: Path) -> Path:
    (result,) = create_backups(manager, [tenant_id], dest)
    assert result.ok, result.error
    assert result.manifest is not None
    return result.manifest


def _manifest_digest(manifest_path: Path) -> dict[str, tuple[int, str]]:
    return {t: (d.rows, d.checksum) for t, d in read_manifest(manifest_path).tables.items()}


def _tenant_ids(manager: TenantDatabaseManager) -> list[str]:
    return [t.tenant_id for t in manager.backend.discover()]


def test_round_trip_same_and_other_id(manager: TenantDatabaseManager, config_file: Path,
                                      tmp_path: Path) -> None:
    manager.provision("src")
    inserted = fill_tenant(manager, "src", big=True)
    before = _digest(manager, "src")
    manifest_path = _backup(manager, "src", tmp_path / "bk")
    manifest = read_manifest(manifest_path)
    assert set(manifest.tables) == set(TABLE_NAMES)
    assert all(d.rows > 0 for d in manifest.tables.values())
    assert manifest.rows == inserted
    assert _manifest_digest(manifest_path) == before
    assert manifest.revision == "0003_object_paths"
    assert manifest.archive_sha256 and manifest.archive_size > 0

    code, out = _run(config_file, "backup", "restore", str(manifest.archive_path), "--as", "copy")
    assert code == 0, out
    assert _digest(manager, "copy") == before
    with manager.tenant_transaction("copy") as session:
        text = session.execute(select(func.max(func.length(s.document.c.raw_content)))).scalar()
    assert text == 1 << 20

    manager.close_tenant_connection("src")
    manager.backend.drop("src", allow_rows)
    code, out = _run(config_file, "backup", "restore", str(manifest_path))
    assert code == 0, out
    assert _digest(manager, "src") == before
    assert manager.backend.read_revisions(["src", "copy"]) == {
        "src": "0003_object_paths", "copy": "0003_object_paths"}


def test_checksums_identical_across_backends(settings_factory: Callable[..., Settings]) -> None:
    digests = []
    for kind in ("postgresql", "sqlite"):
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(settings_factory(kind))
        manager.provision("same")
        fill_tenant(manager, "same", tag="x", big=False)
        digests.append(_digest(manager, "same"))
    TenantDatabaseManager.reset()
    assert digests[0] == digests[1]
    assert len(digests[0]) == len(TABLE_NAMES)


def test_sqlite_backup_while_writing(settings_factory: Callable[..., Settings],
                                     tmp_path: Path) -> None:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_factory("sqlite"))
    manager.provision("busy")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        import datetime as dt
        now = dt.datetime(2026, 1, 1)
        while not stop.is_set():
            n = written[0]
            with manager.tenant_transaction("busy") as session:
                session.execute(s.docbasket.insert().values(
                    id=f"bas_{n:06d}", name=f"b{n}", storage_config={"n": n}, status="a",
                    created_at=now, updated_at=now))
            written[0] = n + 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [create_backups(manager, ["busy"], tmp_path / "bk")[0] for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    assert all(r.ok for r in results), [r.error for r in results]
    counts = [r.rows for r in results]
    assert counts == sorted(counts) and counts[-1] <= written[0]
    assert written[0] > 0
    code, out = _verify_all(manager, tmp_path / "bk")
    assert code == 0, out
    TenantDatabaseManager.reset()


def _verify_all(manager: TenantDatabaseManager, folder: Path) -> tuple[int, str]:
    from docex_ops.backup import verify_path

    results = verify_path(folder, manager)
    bad = [r.problems for r in results if not r.ok or not r.restore_checked]
    return (1 if bad else 0), str(bad)


def test_flipped_byte_fails_verify_and_restore(manager: TenantDatabaseManager,
                                               config_file: Path, tmp_path: Path) -> None:
    manager.provision("a")
    fill_tenant(manager, "a", big=False)
    manifest_path = _backup(manager, "a", tmp_path / "bk")
    code, out = _run(config_file, "backup", "verify", str(tmp_path / "bk"), "--restore-check")
    assert code == 0, out
    archive = read_manifest(manifest_path).archive_path
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    code, out = _run(config_file, "backup", "verify", str(archive))
    assert code == 1 and "sha256" in out
    code, out = _run(config_file, "backup", "restore", str(archive), "--as", "b")
    assert code == 1 and "damaged" in out
    assert _tenant_ids(manager) == ["a"]


def test_manifest_mismatch_removes_restored_copy(manager: TenantDatabaseManager,
                                                 config_file: Path, tmp_path: Path,
                                                 pg_conn_if_pg: object) -> None:
    manager.provision("a")
    fill_tenant(manager, "a", big=False)
    manifest_path = _backup(manager, "a", tmp_path / "bk")
    data = json.loads(manifest_path.read_text())
    data["tables"]["document"]["checksum"] = "0" * 64
    manifest_path.write_text(json.dumps(data))
    code, out = _run(config_file, "backup", "restore", str(manifest_path), "--as", "b")
    assert code == 1 and "table document: checksum" in out
    assert _tenant_ids(manager) == ["a"]
    assert _leftover_staging(manager, pg_conn_if_pg) == []


def test_restore_over_existing_needs_force(manager: TenantDatabaseManager, config_file: Path,
                                           tmp_path: Path) -> None:
    manager.provision("a")
    fill_tenant(manager, "a", tag="one", big=False)
    manifest_path = _backup(manager, "a", tmp_path / "bk")
    fill_tenant(manager, "a", tag="two", big=False)
    changed = _digest(manager, "a")
    code, out = _run(config_file, "backup", "restore", str(manifest_path))
    assert code == 1 and "--force" in out
    assert _digest(manager, "a") == changed
    code, out = _run(config_file, "backup", "restore", str(manifest_path), "--force")
    assert code == 0, out
    assert _digest(manager, "a") == _manifest_digest(manifest_path)
    safety = find_manifests(tmp_path / "bk.safety")  # beside the backups, not inside
    assert len(safety) == 1 and "bk.safety" in out and safety[0].kind == "safety"
    assert {t: (d.rows, d.checksum) for t, d in safety[0].tables.items()} == changed


def test_archive_of_a_never_lands_on_b(manager: TenantDatabaseManager, config_file: Path,
                                       tmp_path: Path) -> None:
    for tenant_id, tag in (("a", "a"), ("b", "b")):
        manager.provision(tenant_id)
        fill_tenant(manager, tenant_id, tag=tag, big=False)
    manifest_path = _backup(manager, "a", tmp_path / "bk")
    b_before = _digest(manager, "b")
    manager.close_tenant_connection("a")
    manager.backend.drop("a", allow_rows)
    code, out = _run(config_file, "--format", "json", "backup", "restore", str(manifest_path))
    assert code == 0, out
    assert json_data(out, "backup restore")["tenant"] == "a"
    code, out = _run(config_file, "backup", "restore", str(manifest_path), "--as", "b")
    assert code == 1 and "holds" in out
    assert _digest(manager, "b") == b_before
    assert _digest(manager, "a") == _manifest_digest(manifest_path)


@pytest.mark.parametrize("bad_id", ["../x", "Acme", "x;drop schema a", "public", "pg_x", "",
                                    "a" * 49, "a/b"])
def test_hostile_as_ids_refused(manager: TenantDatabaseManager, config_file: Path,
                                tmp_path: Path, bad_id: str, pg_conn_if_pg: object) -> None:
    manager.provision("a")
    manifest_path = _backup(manager, "a", tmp_path / "bk")
    code, out = _run(config_file, "backup", "restore", str(manifest_path), "--as", bad_id)
    assert code == 2, out
    assert _tenant_ids(manager) == ["a"]
    assert _leftover_staging(manager, pg_conn_if_pg) == []
    assert not (tmp_path / "bk.safety").exists()


def test_list_and_prune_keep_good_copies(manager: TenantDatabaseManager, config_file: Path,
                                         tmp_path: Path) -> None:
    manager.provision("a")
    manager.provision("b")
    dest = tmp_path / "bk"
    a = [_backup(manager, "a", dest) for _ in range(3)]
    b_only = _backup(manager, "b", dest)
    oldest_archive = read_manifest(a[0]).archive_path
    code, out = _run(config_file, "--format", "json", "backup", "list", str(dest))
    assert code == 0 and [e["tenant"] for e in json_data(out)["backups"]] == ["a"] * 3 + ["b"]
    for manifest_path in (a[2], b_only):  # newest of a and the only copy of b are damaged
        archive = read_manifest(manifest_path).archive_path
        archive.write_bytes(archive.read_bytes()[:-1] + b"!")
    code, out = _run(config_file, "backup", "prune", str(dest), "--keep", "1", "--dry-run")
    assert code == 0 and "would remove" in out
    assert len(find_manifests(dest)) == 4
    code, out = _run(config_file, "backup", "prune", str(dest), "--keep", "1")
    assert code == 0, out
    left = {m.path for m in find_manifests(dest)}
    assert left == {a[1], b_only}
    assert "tenant b: no copy matches" in out
    assert read_manifest(a[1]).archive_path.exists()
    assert not oldest_archive.exists() and not a[0].exists()


def test_upgrade_flag(manager: TenantDatabaseManager, config_file: Path, tmp_path: Path) -> None:
    from docex_ops.migrate import MigrationScripts, StepOptions, TenantStep, migrate_tenant

    manager.provision("a")
    step = TenantStep("a", manager.backend.location("a"), None, "0002_docex_2_9_9", "downgrade")
    assert migrate_tenant(manager.backend, MigrationScripts(), step, StepOptions(force=True)).ok
    manifest_path = _backup(manager, "a", tmp_path / "bk")
    code, out = _run(config_file, "backup", "restore", str(manifest_path), "--as", "old")
    assert code == 0, out
    code, out = _run(config_file, "backup", "restore", str(manifest_path), "--as", "up",
                     "--upgrade")
    assert code == 0, out
    assert manager.backend.read_revisions(["a", "old", "up"]) == {
        "a": "0002_docex_2_9_9", "old": "0002_docex_2_9_9", "up": "0003_object_paths"}


def test_create_reports_failures_and_goes_on(manager: TenantDatabaseManager, config_file: Path,
                                             tmp_path: Path) -> None:
    manager.provision("a")
    code, out = _run(config_file, "--format", "json", "backup", "create", "--tenant", "a",
                     "--tenant", "ghost", "--dest", str(tmp_path / "bk"))
    assert code == 2  # a named tenant that does not exist is a usage problem (issue 16)
    rows = {r["tenant"]: r for r in json_data(out, "backup create")["backups"]}
    assert rows["a"]["status"] == "ok" and rows["ghost"]["status"] == "FAILED"
    assert [m.tenant_id for m in find_manifests(tmp_path / "bk")] == ["a"]
    code, out = _run(config_file, "backup", "create", "--tenant", "Bad!", "--dest",
                     str(tmp_path / "bk2"))
    assert code == 2 and not (tmp_path / "bk2").exists()


def _leftover_staging(manager: TenantDatabaseManager, pg_conn: object) -> list[str]:
    if manager.backend.kind == "sqlite":
        root = manager.settings.sqlite.storage_root
        return [str(p) for p in root.rglob(".docex-*")] if root.exists() else []
    with pg_conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'docex$%'")
        return [r[0] for r in cur.fetchall()]


@pytest.fixture
def pg_conn_if_pg(kind: str, request: pytest.FixtureRequest) -> object:
    return request.getfixturevalue("pg_conn") if kind == "postgresql" else None
