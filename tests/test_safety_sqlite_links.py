"""SQLite: one tenant, one real file. Links planted under the storage root (tenant b's
directory a symbolic link to a's, or b's file a hard link of a's) never make a command
read, back up, overwrite or delete a's data as b's; refusals name both tenants."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from backup_data import fill_tenant
from click.testing import CliRunner
from docs_support import write_config
from json_support import json_data

from docex_ops.backends.sqlite import SqliteBackend
from docex_ops.backends.sqlite_paths import TenantFileError
from docex_ops.backup import find_manifests
from docex_ops.backup.manifest import Manifest
from docex_ops.cli import main
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.runner_lock import runner_lock


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.output


def _json(config: Path, *args: str) -> tuple[int, Any, str]:
    """(exit code, parsed stdout, stderr)."""
    result = CliRunner().invoke(main, ["--config", str(config), "--format", "json", *args])
    return result.exit_code, json_data(result.stdout), result.stderr


def _files(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (links not followed): the snapshot
    that proves nothing outside what a command may touch changed."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _rows(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


class Deployment:
    def __init__(self, settings: Settings, config: Path) -> None:
        self.settings, self.config = settings, config
        self.root = settings.sqlite.storage_root

    def file(self, tenant: str) -> Path:
        return self.root / f"tenant_{tenant}" / "docex.db"


@pytest.fixture(params=["symlinked_dir", "hard_linked_file"])
def linked(request: pytest.FixtureRequest, settings_factory: Callable[..., Settings],
           tmp_path: Path) -> Iterator[Deployment]:
    """Tenants a (with rows) and c (a backup source); b planted as a link to a."""
    settings = settings_factory("sqlite")
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    fill_tenant(manager, "a", "a", big=False)
    fill_tenant(manager, "c", "c", big=False)
    TenantDatabaseManager.reset()
    deployment = Deployment(settings, write_config(settings, tmp_path / "config.yaml"))
    b_dir = deployment.file("b").parent
    if request.param == "symlinked_dir":
        b_dir.symlink_to(deployment.file("a").parent, target_is_directory=True)
    else:
        b_dir.mkdir()
        os.link(deployment.file("a"), deployment.file("b"))
    deployment.kind = request.param  # type: ignore[attr-defined]
    yield deployment
    TenantDatabaseManager.reset()


def _a_unchanged(d: Deployment, before: dict[str, str]) -> None:
    assert d.file("a").is_file()
    assert _files(d.root / "tenant_a") == before
    assert _rows(d.file("a"))["docbasket"] == 1


def test_provision_refuses_and_never_says_exists(linked: Deployment) -> None:
    before = _files(linked.root / "tenant_a")
    code, provisioned, err = _json(linked.config, "tenants", "provision", "b")
    (row,) = provisioned["tenants"]
    assert code == 1, err
    assert row["action"] == "failed" and "exists" not in row["action"]
    assert "tenant 'b'" in row["error"] and "tenant 'a'" in row["error"], row["error"]
    _a_unchanged(linked, before)


def test_backup_all_refuses_b_and_never_writes_a_b_backup(linked: Deployment,
                                                          tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    code, out = _run(linked.config, "backup", "create", "--all", "--dest", str(dest))
    assert code == 1, out
    assert "tenant 'b'" in out and "tenant 'a'" in out
    backed_up = {m.tenant_id for m in find_manifests(dest)}
    assert "b" not in backed_up
    if linked.kind == "symlinked_dir":  # type: ignore[attr-defined]
        assert backed_up == {"a", "c"}
    else:  # one inode under two names: nothing says whose rows it holds, so neither
        assert backed_up == {"c"}
        assert "same file as tenant 'b'" in out and "same file as tenant 'a'" in out


def test_backup_of_named_tenants_refuses_b_alone(linked: Deployment, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    code, out = _run(linked.config, "backup", "create", "--tenant", "c", "--tenant", "b",
                     "--dest", str(dest))
    assert code == 1 and "tenant 'b'" in out, out
    assert {m.tenant_id for m in find_manifests(dest)} == {"c"}


def test_restore_as_b_refuses_and_a_keeps_its_rows(linked: Deployment, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    assert _run(linked.config, "backup", "create", "--tenant", "c", "--dest", str(dest))[0] == 0
    (manifest,) = find_manifests(dest)
    before = _files(linked.root / "tenant_a")
    code, out = _run(linked.config, "backup", "restore", str(manifest.path), "--as", "b",
                     "--force")
    assert code == 1, out
    assert "tenant 'b'" in out and "tenant 'a'" in out
    _a_unchanged(linked, before)
    safety = dest.with_name("backups.safety")
    assert not list(safety.glob("b.*")) if safety.exists() else True


def test_drop_b_refuses_and_a_file_stays(linked: Deployment) -> None:
    before = _files(linked.root / "tenant_a")
    code, out = _run(linked.config, "tenants", "drop", "b", "--yes", "--force")
    assert code == 1, out
    assert "tenant 'b'" in out and "tenant 'a'" in out
    _a_unchanged(linked, before)


def test_list_and_show_report_the_link_and_exit_1(linked: Deployment) -> None:
    code, out, _ = _json(linked.config, "tenants", "list")
    assert code == 1
    listed = {t["tenant"]: t for t in out["tenants"]}
    assert listed["b"]["state"] == "linked"
    assert "tenant 'a'" in listed["b"]["detail"]
    assert listed["c"]["state"] == "versioned"
    code, out = _run(linked.config, "tenants", "show", "b")
    assert code == 1 and "tenant 'a'" in out


def test_migrate_goes_on_with_the_others(linked: Deployment) -> None:
    code, out, _ = _json(linked.config, "migrate", "status")
    assert code == 1
    states = {t["tenant"]: t["state"] for t in out["tenants"]}
    assert states["b"] == "linked" and states["c"] == "current"
    code, out = _run(linked.config, "migrate", "upgrade")
    assert code == 1 and "b" in out


def test_the_manager_refuses_a_tenant_engine(linked: Deployment) -> None:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(linked.settings)
    with pytest.raises(RuntimeError, match="tenant 'b'"):
        manager.get_tenant_engine("b")
    assert manager.get_tenant_engine("c") is not None


def test_a_link_planted_between_check_and_open_is_caught(settings_factory: Callable[..., Settings]
                                                         ) -> None:
    settings = settings_factory("sqlite")
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    fill_tenant(manager, "a", "a", big=False)
    assert manager.provision("b")
    TenantDatabaseManager.reset()
    backend = SqliteBackend(settings)
    root = settings.sqlite.storage_root
    # The check passes on b's own directory; then b's directory becomes a link to a's.
    checked = backend.paths.check("b")
    shutil.rmtree(root / "tenant_b")
    (root / "tenant_b").symlink_to(root / "tenant_a", target_is_directory=True)
    with pytest.raises(TenantFileError, match="turned into a link"):
        backend.open_tenant("b", checked=checked)
    # And a hard link planted in b's place: another inode than the one checked.
    (root / "tenant_b").unlink()
    (root / "tenant_b").mkdir()
    os.link(root / "tenant_a" / "docex.db", root / "tenant_b" / "docex.db")
    with pytest.raises(TenantFileError, match="hard links|replaced"):
        backend.open_tenant("b", checked=checked)


def test_the_control_file_and_lock_file_are_never_followed(
        settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory("sqlite")
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    fill_tenant(manager, "a", "a", big=False)
    TenantDatabaseManager.reset()
    root = settings.sqlite.storage_root
    a_file = root / "tenant_a" / "docex.db"
    before = a_file.read_bytes()
    (root / "_docex_ops.lock").symlink_to(a_file)  # truncating it would empty a's file
    backend = SqliteBackend(settings)
    with pytest.raises(OSError), runner_lock(backend, wait=False):
        pass
    (root / "_docex_ops.lock").unlink()
    (root / "_docex_ops.db").symlink_to(a_file)  # run records must not land in a's file
    with pytest.raises(TenantFileError, match="control file"), \
            backend.control_engine().connect():
        pass
    assert a_file.read_bytes() == before


@pytest.fixture
def victim(settings_factory: Callable[..., Settings], tmp_path: Path
           ) -> tuple[Settings, Path, Manifest]:
    """Tenant b holds rows; the attacker has a backup of the empty tenant decoy."""
    settings = settings_factory("sqlite")
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    fill_tenant(manager, "b", "secret", big=False)
    assert manager.provision("decoy")
    TenantDatabaseManager.reset()
    config = write_config(settings, tmp_path / "config.yaml")
    dest = tmp_path / "backups"
    assert _run(config, "backup", "create", "--tenant", "decoy", "--dest", str(dest))[0] == 0
    (found,) = find_manifests(dest)
    return settings, config, found


def test_a_percent_encoded_archive_name_cannot_read_a_live_file(
        victim: tuple[Settings, Path, Manifest], tmp_path: Path) -> None:
    """The manifest's archive name ``tenant_b%2Fdocex.db`` is a plain file beside it (a
    decoy); SQLite must open that literal file, never storage/tenant_b/docex.db."""
    settings, config, found = victim
    root = settings.sqlite.storage_root
    dest = tmp_path / "backups"
    manifest_path = found.path
    manifest = json.loads(manifest_path.read_text())
    # The attacker's copy in the storage root: the decoy's archive under the hostile name.
    hostile = root / "tenant_b%2Fdocex.db"
    shutil.copy(dest / manifest["archive"], hostile)
    manifest["archive"] = hostile.name
    planted = root / manifest_path.name
    planted.write_text(json.dumps(manifest))
    code, out = _run(config, "backup", "restore", str(planted), "--as", "thief")
    TenantDatabaseManager.reset()
    thief = root / "tenant_thief" / "docex.db"
    if thief.exists():  # restored from the literal file: the decoy's (empty) tables
        assert _rows(thief).get("docbasket", 0) == 0, out
    assert _rows(root / "tenant_b" / "docex.db")["docbasket"] == 1


def test_split_into_a_linked_target_refuses_it(linked: Deployment, tmp_path: Path) -> None:
    from split_data import make_sqlite_source

    source = make_sqlite_source(tmp_path / "single.db")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("baskets:\n  basket one: b\n  bas_b2: b\n  bas_b3: globex\n")
    before = _files(linked.root / "tenant_a")
    code, report, err = _json(linked.config, "split", "run", "--source", str(source),
                              "--mapping", str(mapping), "--unmapped", "skip",
                              "--cross-tenant-edges", "drop", "--continue-on-error")
    assert code == 1, err
    results = {r["tenant"]: r for r in report["results"]}
    assert results["b"]["status"] == "refused" and "tenant 'a'" in results["b"]["error"]
    assert results["globex"]["status"] == "copied"
    _a_unchanged(linked, before)


@pytest.mark.parametrize("plant", ["symlink", "hard_link", "linked_folder"])
def test_an_archive_that_is_a_live_tenant_file_is_refused(
        plant: str, victim: tuple[Settings, Path, Manifest], tmp_path: Path) -> None:
    """Whoever can write to the backup folder replaces an archive with a link to tenant
    b's live file and recomputes the manifest's sha256: restore never reads it."""
    settings, config, found = victim
    live = settings.sqlite.storage_root / "tenant_b" / "docex.db"
    dest = tmp_path / "backups"
    manifest = json.loads(found.path.read_text())
    from docex_ops.backup.archivers import make_archiver

    archiver = make_archiver(SqliteBackend(settings))  # b's digests, as the attacker reads them
    stolen = {t: {"rows": d.rows, "checksum": d.checksum}
              for t, d in archiver.digest_tenant("b").items()}
    if plant == "linked_folder":  # the manifest sits in a folder that is b's directory
        folder = tmp_path / "evil"
        folder.symlink_to(live.parent, target_is_directory=True)
        manifest_path = folder / found.path.name
        manifest["archive"] = live.name
    else:
        archive = dest / manifest["archive"]
        archive.unlink()
        if plant == "symlink":
            archive.symlink_to(live)
        else:
            os.link(live, archive)
        manifest_path = found.path
    manifest["archive_sha256"] = hashlib.sha256(live.read_bytes()).hexdigest()
    manifest["archive_size"] = live.stat().st_size
    manifest["tables"] = stolen
    manifest_path.write_text(json.dumps(manifest))
    code, out = _run(config, "backup", "restore", str(manifest_path), "--as", "thief")
    assert code == 1, out
    assert "refusing to restore" in out or "cannot be opened as a plain file" in out, out
    assert not (settings.sqlite.storage_root / "tenant_thief" / "docex.db").exists()
