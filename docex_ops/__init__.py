"""docex-ops: operate DocEX deployments with database-level multi-tenancy.

``from docex_ops import TenantDatabaseManager, UserContext``. Packages export
their names lazily (``lazy_exports``): a name's module is imported on first
use, so a ``docex-ops`` command loads only the code it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.tenancy import UserContext


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a
    module path) the first time ``name`` is read."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__


__all__ = ["TenantDatabaseManager", "UserContext", "lazy_exports"]
__getattr__ = lazy_exports(__name__, {"TenantDatabaseManager": "docex_ops.manager.tenant_manager",
                                      "UserContext": "docex_ops.tenancy"})
