"""Restore onto any existing tenant needs --force; safety copies live beside the backups,
marked in `backup list`; `backup prune` never removes a tenant's newest verified archive
and says what it keeps and why. Real PostgreSQL and SQLite files, through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from backup_data import fill_tenant
from migration_helpers import cli, cli_json

from docex_ops.backup.manifest import find_manifests
from docex_ops.manager.tenant_manager import TenantDatabaseManager


def _backup(config: Path, tenant_id: str, dest: Path) -> Path:
    code, out = cli(config, "backup", "create", "--tenant", tenant_id, "--dest", str(dest))
    assert code == 0, out
    return max(find_manifests(dest), key=lambda m: m.finished_at).path  # type: ignore[return-value]


def _list(config: Path, folder: Path) -> list[dict[str, Any]]:
    code, data = cli_json(config, "backup", "list", str(folder))
    assert code == 0, data
    return list(data["backups"])


def test_restore_onto_an_existing_empty_tenant_needs_force(
        manager: TenantDatabaseManager, config_file: Path, tmp_path: Path) -> None:
    manager.provision("src")
    fill_tenant(manager, "src", big=False)
    manager.provision("empty")
    manifest = _backup(config_file, "src", tmp_path / "bk")
    code, out = cli(config_file, "backup", "restore", str(manifest), "--as", "empty")
    assert code == 1 and "Traceback" not in out, out
    assert "tenant 'empty' exists" in out and "--force" in out and "--as NEW_ID" in out
    assert manager.backend.catalog("empty") and not any(
        manager.backend.read_contents("empty").rows.values())  # type: ignore[union-attr]
    code, out = cli(config_file, "backup", "restore", str(manifest), "--as", "empty", "--force")
    assert code == 0, out
    assert sum(manager.backend.read_contents("empty").rows.values()) > 0  # type: ignore[union-attr]
    code, out = cli(config_file, "backup", "restore", str(manifest), "--as", "fresh")
    assert code == 0, out  # a tenant that does not exist needs nothing


def test_safety_copies_beside_the_backups_and_prune_keeps_the_archive(
        manager: TenantDatabaseManager, config_file: Path, tmp_path: Path) -> None:
    backups = tmp_path / "bk"
    manager.provision("a")
    fill_tenant(manager, "a", tag="one", big=False)
    older = _backup(config_file, "a", backups)
    nightly = _backup(config_file, "a", backups)
    fill_tenant(manager, "a", tag="two", big=False)
    code, out = cli(config_file, "backup", "restore", str(nightly), "--force")
    assert code == 0, out
    safety_dir = tmp_path / "bk.safety"
    (safety,) = find_manifests(safety_dir)
    assert safety.kind == "safety" and str(safety_dir) in out
    assert not any(m.kind == "safety" for m in find_manifests(backups))  # not inside
    listed = _list(config_file, backups)
    assert [(e["kind"], e["manifest"]) for e in listed] == [
        ("archive", str(older)), ("archive", str(nightly)), ("safety", str(safety.path))]
    code, out = cli(config_file, "--format", "table", "backup", "list", str(backups))
    assert "kind" in out.splitlines()[0] and "safety" in out

    # The older layout kept them inside the backups (pre-restore/): a newer safety copy
    # there must not push the nightly archive out either.
    legacy = backups / "pre-restore"
    legacy.mkdir()
    for name in (safety.archive, safety.path.name):  # type: ignore[union-attr]
        shutil.copy(safety_dir / name, legacy / name)
    code, out = cli(config_file, "backup", "prune", str(backups), "--keep", "1", "--dry-run")
    assert code == 0, out
    dry = out
    code, report = cli_json(config_file, "backup", "prune", str(backups), "--keep", "1")
    assert code == 0, report
    kept = report["why_kept"]
    assert kept[str(nightly)] == "the newest verified archive (always kept)"
    assert kept[str(legacy / safety.path.name)].startswith("the newest verified safety copy")
    left = {m.path for m in find_manifests(backups)}
    assert left == {nightly, legacy / safety.path.name}
    assert not older.exists() and str(older) in dry and "would remove" in dry
    assert "the newest verified archive" in dry
    assert find_manifests(safety_dir)  # the safety folder beside is not pruned with bk
