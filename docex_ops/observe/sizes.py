"""Tenant sizes for the snapshot, per database kind (``SIZES``): with the discovery they
come with, so a kind that measures while it discovers (SQLite: a stat per file) reads
the fleet once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from docex_ops.backends.registry import KindRegistry

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.topology.base import Discovery

SizedDiscovery = Callable[["TenantDatabaseManager"], "tuple[Discovery, dict[str, int]]"]

SIZES = KindRegistry[SizedDiscovery]("fleet sizes", {
    "postgresql": "docex_ops.observe.pg_sizes:discover_sized",
    "sqlite": "docex_ops.observe.sizes:discover_measured",
})


def discover_measured(manager: TenantDatabaseManager) -> tuple[Discovery, dict[str, int]]:
    """The discovery that measures each tenant exactly (what ``tenants list`` shows)."""
    found = manager.discover(with_size=True)
    return found, {t.tenant_id: t.size_bytes for t in found.tenants if t.size_bytes is not None}


def discover_sized(manager: TenantDatabaseManager) -> tuple[Discovery, dict[str, int]]:
    return SIZES.for_kind(manager.backend.kind)(manager)
