"""docex-ops: operate DocEX deployments with database-level multi-tenancy.

``from docex_ops import DocEX, TenantDatabaseManager, UserContext``. The names
are imported on first use so that ``docex-ops`` commands start quickly.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docex_ops.documents import DocEX
    from docex_ops.manager import TenantDatabaseManager
    from docex_ops.tenancy import UserContext

_EXPORTS = {"DocEX": "docex_ops.documents", "TenantDatabaseManager": "docex_ops.manager",
            "UserContext": "docex_ops.tenancy"}

__all__ = ["DocEX", "TenantDatabaseManager", "UserContext"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'docex_ops' has no attribute {name!r}")
