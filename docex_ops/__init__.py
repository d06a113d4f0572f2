"""docex-ops: operate DocEX deployments with database-level multi-tenancy."""

from docex_ops.documents import DocEX
from docex_ops.manager import TenantDatabaseManager
from docex_ops.tenancy import UserContext

__all__ = ["DocEX", "TenantDatabaseManager", "UserContext"]
