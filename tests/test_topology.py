"""The topology's own behaviour: one call per server (for_each_server) and the per-server
job limit every per-tenant migration and restore takes a slot of, on real servers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from docex_ops.backends.base import Backend
from docex_ops.backup import create_backups
from docex_ops.backup.restore import restore_backup
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import (
    MigrationScripts,
    RunOptions,
    Selection,
    StepOptions,
    migrate,
    upgrade_tenants,
)
from docex_ops.schema.head import docbasket
from docex_ops.topology.several import SeveralServers

SERVERS = ("main", "b", "c")


class WatchedSlot(threading.BoundedSemaphore):
    """A job slot that says when someone had to wait for it."""

    def __init__(self) -> None:
        super().__init__(1)
        self.waited = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if super().acquire(blocking=False):
            return True
        self.waited.set()
        return super().acquire(blocking, timeout)

    def __enter__(self) -> bool:  # Semaphore binds __enter__ to its own acquire
        return self.acquire()


def _several(manager: TenantDatabaseManager) -> SeveralServers:
    assert isinstance(manager.topology, SeveralServers)
    return manager.topology


def _watch(manager: TenantDatabaseManager, server: str) -> WatchedSlot:
    manager.set_server_jobs(1)
    slot = WatchedSlot()
    manager.topology._server_jobs[server] = slot  # the limit of 1, instrumented
    return slot


def _seed(manager: TenantDatabaseManager, tenant_id: str, server: str) -> None:
    _several(manager).reserve(tenant_id, server)
    with manager.tenant_transaction(tenant_id) as session:
        session.execute(insert(docbasket).values(
            id=f"bas_{tenant_id}", name=tenant_id, storage_config={}, status="active",
            created_at="2026-01-01", updated_at="2026-01-01"))


def _in_thread(fn: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_for_each_server_calls_each_server_at_once_with_its_tenants(
        fleet_manager: TenantDatabaseManager) -> None:
    for tenant_id, server in (("on_b", "b"), ("on_c", "c"), ("also_b", "b")):
        _several(fleet_manager).reserve(tenant_id, server)
        fleet_manager.provision(tenant_id)
    together = threading.Barrier(len(SERVERS), timeout=30)  # broken unless all run at once

    def visit(name: str, backend: Backend, ids: list[str]) -> tuple[str, list[str], int]:
        together.wait()
        return backend.settings.postgres.describe(), ids, len(backend.tenant_ids())

    every = fleet_manager.for_each_server(visit)
    assert list(every) == list(SERVERS)
    assert [ids for _, ids, _ in every.values()] == [[], [], []]
    assert {name: n for name, (_, _, n) in every.items()} == {"main": 0, "b": 2, "c": 1}
    assert len({where for where, _, _ in every.values()}) == 3  # three servers, not one
    some = fleet_manager.for_each_server(lambda name, _, ids: ids, ["on_c", "on_b", "also_b"])
    assert some == {"b": ["on_b", "also_b"], "c": ["on_c"]}


def test_for_each_server_on_one_server_is_one_call(manager: TenantDatabaseManager) -> None:
    manager.provision("solo")
    calls = manager.for_each_server(lambda name, backend, ids: (backend is manager.backend, ids))
    assert calls == {manager.topology.control_server: (True, [])}
    assert manager.for_each_server(lambda _, __, ids: ids, ["solo"]) == {
        manager.topology.control_server: ["solo"]}


def test_a_restore_waits_for_a_slot_of_its_server_only(fleet_manager: TenantDatabaseManager,
                                                       tmp_path: Path) -> None:
    _seed(fleet_manager, "kept_b", "b")
    _seed(fleet_manager, "kept_c", "c")
    backups = {r.tenant_id: r for r in create_backups(fleet_manager, ["kept_b", "kept_c"],
                                                      tmp_path / "bk")}
    assert all(r.ok for r in backups.values())
    slot = _watch(fleet_manager, "b")
    with fleet_manager.server_slot("kept_b") as server:
        assert server == "b"
        # Another server's restore is not held up by b's limit.
        other = restore_backup(fleet_manager, backups["kept_c"].manifest, force=True,
                               safety_dir=tmp_path / "safety")
        assert other.tenant_id == "kept_c" and not slot.waited.is_set()
        thread, errors = _in_thread(lambda: restore_backup(
            fleet_manager, backups["kept_b"].manifest, force=True,
            safety_dir=tmp_path / "safety"))
        assert slot.waited.wait(60), "the restore on b did not wait for b's slot"
        assert thread.is_alive()
    thread.join(120)
    assert not thread.is_alive() and errors == []
    assert fleet_manager.server_of("kept_b") == "b"


def test_a_migration_waits_for_a_slot_of_its_server(fleet_manager: TenantDatabaseManager
                                                    ) -> None:
    _several(fleet_manager).reserve("behind", "c")
    fleet_manager.provision("behind")  # empty: the downgrade loses nothing
    scripts = MigrationScripts()
    previous = scripts.order[-2]
    down = migrate(fleet_manager, scripts, Selection(include=("behind",)), "downgrade",
                   previous, RunOptions(step=StepOptions(force=True)))
    assert down.ok, down.results
    assert fleet_manager.topology.read_revisions(["behind"]) == {
        "behind": previous}
    slot = _watch(fleet_manager, "c")
    with fleet_manager.server_slot("behind"):
        thread, errors = _in_thread(lambda: upgrade_tenants(fleet_manager, ["behind"]))
        assert slot.waited.wait(60), "the upgrade did not wait for its server's slot"
        assert fleet_manager.topology.read_revisions(["behind"]) == {"behind": previous}
    thread.join(120)
    assert not thread.is_alive() and errors == []
    assert fleet_manager.topology.read_revisions(["behind"]) == {"behind": scripts.head}


def test_without_a_limit_no_slot_is_waited_for(fleet_manager: TenantDatabaseManager) -> None:
    fleet_manager.set_server_jobs(None)
    _several(fleet_manager).reserve("free", "b")
    fleet_manager.provision("free")
    with fleet_manager.server_slot("free"), fleet_manager.server_slot("free") as server:
        assert server == "b"
    with pytest.raises(LookupError, match="no server 'nowhere'"):
        fleet_manager.topology.reserve("free2", "nowhere")


def test_the_manager_backend_is_the_control_servers_plain_backend(
        fleet_manager: TenantDatabaseManager) -> None:
    several = _several(fleet_manager)
    assert fleet_manager.backend is fleet_manager.servers[several.directory_server]
    several.reserve("placed_c", "c")
    fleet_manager.provision("placed_c")
    assert fleet_manager.backend_of("placed_c") is fleet_manager.servers["c"]
    several.servers["b"].create("stray", "")  # a schema the directory never heard of
    found = fleet_manager.discover()
    assert [t.tenant_id for t in found.tenants] == ["placed_c"]
    assert [p.tenant_id for p in found.problems] == ["stray"]
    assert not hasattr(fleet_manager.backend, "last_problems")


def test_by_server_reads_the_directory_once_not_per_tenant(
        fleet_manager: TenantDatabaseManager) -> None:
    from sqlalchemy import event

    placed = {f"d{n:02d}": ("b" if n % 2 else "c") for n in range(12)}
    for tenant_id, server in placed.items():
        _several(fleet_manager).reserve(tenant_id, server)
        _several(fleet_manager).activate(tenant_id)
    _several(fleet_manager).reserve("half_made", "b")  # provisioning, not yet routable
    directory_reads: list[str] = []
    engine = _several(fleet_manager).directory.backend.admin_engine

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "tenant_directory" in statement and statement.lstrip().startswith("SELECT"):
            directory_reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        grouped = fleet_manager.by_server(list(placed))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert grouped == {"b": [t for t, s in placed.items() if s == "b"],
                       "c": [t for t, s in placed.items() if s == "c"]}
    assert len(directory_reads) == 1, directory_reads
    # The same refusals as server_of: an unknown tenant names the way to record it.
    with pytest.raises(Exception, match="not in the tenant directory"):
        fleet_manager.by_server(["d01", "nowhere"])
    with pytest.raises(Exception, match="is provisioning: rerun"):
        fleet_manager.by_server(["d01", "half_made"])
