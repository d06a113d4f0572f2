"""SQLite: a tenant file locked by another process past the lock timeout is reported
``locked``, a file that is not a database ``corrupt``; every command goes on with the
other tenants and exits 1, and none waits past the lock timeout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backup_data import fill_tenant
from docs_support import write_config
from json_support import json_data

from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager

# Generous: the lock is held for ten minutes, so a command that waited on it would
# hit this bound; the lock timeout given is 1s.
COMMAND_BOUND_S = 60

_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
time.sleep(600)
"""


def _cli(config: Path, *args: str) -> tuple[int, Any, str]:
    """docex-ops in its own process, --format json, lock timeout 1s."""
    done = subprocess.run(
        [sys.executable, "-m", "docex_ops.cli", "--config", str(config), "--lock-timeout", "1s",
         "--format", "json", *args], capture_output=True, text=True, timeout=COMMAND_BOUND_S,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        out = json_data(done.stdout)
    except ValueError:
        out = done.stdout
    return done.returncode, out, done.stderr


@pytest.fixture
def troubled(settings_factory: Callable[..., Settings], tmp_path: Path
             ) -> Iterator[tuple[Path, Settings]]:
    """Tenants fine (rows), held (BEGIN EXCLUSIVE in another process), junk (random bytes)."""
    settings = settings_factory("sqlite")
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    fill_tenant(manager, "fine", "f", big=False)
    fill_tenant(manager, "held", "h", big=False)
    assert manager.provision("junk")
    TenantDatabaseManager.reset()
    root = settings.sqlite.storage_root
    (root / "tenant_junk" / "docex.db").write_bytes(os.urandom(16384))
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER,
                               str(root / "tenant_held" / "docex.db")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        yield write_config(settings, tmp_path / "config.yaml"), settings
    finally:
        holder.kill()
        holder.wait()


def _sums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("docex.db"))}


def test_list_and_show(troubled: tuple[Path, Settings]) -> None:
    config, settings = troubled
    code, out, err = _cli(config, "tenants", "list")
    assert code == 1, err
    states = {t["tenant"]: t["state"] for t in out["tenants"]}
    assert states == {"fine": "versioned", "held": "locked", "junk": "corrupt"}
    details = {t["tenant"]: t["detail"] for t in out["tenants"]}
    assert "locked by another connection (waited 1s" in details["held"]
    assert "not a valid SQLite database" in details["junk"]
    assert "held (locked)" in err and "junk (corrupt)" in err
    for tenant, word in (("held", "locked"), ("junk", "corrupt")):
        code, _, err = _cli(config, "tenants", "show", tenant)
        assert code == 1 and word in err
    code, out, err = _cli(config, "tenants", "show", "fine")
    assert code == 0 and out["rows"]["docbasket"] == 1, err


def test_backup_goes_on_with_the_others(troubled: tuple[Path, Settings],
                                        tmp_path: Path) -> None:
    config, settings = troubled
    code, out, err = _cli(config, "backup", "create", "--all", "--dest", str(tmp_path / "bk"))
    assert code == 1, err
    by_tenant = {r["tenant"]: r for r in out["backups"]}
    assert by_tenant["fine"]["status"] == "ok"
    assert by_tenant["held"]["status"] == "FAILED" and "locked" in by_tenant["held"]["error"]
    assert by_tenant["junk"]["status"] == "FAILED" and "corrupt" in by_tenant["junk"]["error"]
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "bk").glob("*.manifest.json")) \
        == ["fine"]


def test_migrate_status_and_upgrade(troubled: tuple[Path, Settings]) -> None:
    config, settings = troubled
    before = _sums(settings.sqlite.storage_root)
    code, out, err = _cli(config, "migrate", "status")
    assert code == 1, err
    states = {t["tenant"]: t["state"] for t in out["tenants"]}
    assert states == {"fine": "current", "held": "locked", "junk": "corrupt"}
    code, out, err = _cli(config, "migrate", "upgrade")
    assert code == 1, err
    status = {r["tenant"]: r["status"] for r in out["tenants"]}
    assert status == {"held": "blocked", "junk": "blocked"}  # fine: already at head
    assert _sums(settings.sqlite.storage_root) == before  # the junk file was never written


def test_the_busy_timeout_is_the_lock_timeout(troubled: tuple[Path, Settings]) -> None:
    """A migration of a locked tenant waits the lock timeout given (or the configured
    one), never a fixed 30s, then fails that tenant alone."""
    _, settings = troubled
    from dataclasses import replace

    from docex_ops.backends.base import TenantLockedError
    from docex_ops.backends.sqlite import SqliteBackend

    backend = SqliteBackend(replace(settings, lock_timeout=0.5))
    for given, shown in ((None, "0.5s"), (1.0, "1s")):
        with pytest.raises(TenantLockedError, match=f"waited {shown}"), \
                backend.migration_connection("held", lock_timeout=given):
            pass
    assert backend.migration_connection("fine") is not None
