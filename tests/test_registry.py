"""The per-kind registry and the manager's topology answers."""

from __future__ import annotations

import sys

import pytest

from docex_ops.backends.registry import KindRegistry
from docex_ops.manager.tenant_manager import TenantDatabaseManager


def test_registry_imports_only_the_kind_asked_for_and_refuses_unknown_kinds() -> None:
    sys.modules.pop("docex_ops.pools.sqlite_usage", None)
    registry = KindRegistry[object]("usage", {"sqlite": "docex_ops.pools.sqlite_usage:wal_size",
                                             "postgresql": "docex_ops.nowhere:nothing"})
    assert "docex_ops.pools.sqlite_usage" not in sys.modules
    assert callable(registry.for_kind("sqlite"))
    assert "docex_ops.pools.sqlite_usage" in sys.modules
    with pytest.raises(LookupError, match="usage is not available for 'oracle'"):
        registry.for_kind("oracle")


def test_one_server_is_a_topology_of_one(manager: TenantDatabaseManager) -> None:
    manager.provision("t1")
    manager.provision("t2")
    (name,) = manager.servers
    assert manager.server_of("t1") == name
    assert manager.backend_of("t2") is manager.servers[name]
    assert manager.by_server(["t1", "t2"]) == {name: ["t1", "t2"]}
    found = manager.discover()
    assert [t.tenant_id for t in found.tenants] == ["t1", "t2"] and found.problems == []
