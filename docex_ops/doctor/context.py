"""What the checks share: the manager, the servers that answered, one discovery."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from docex_ops.backends.base import Backend
    from docex_ops.backends.postgres import PostgresBackend
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.plan import StatusReport
    from docex_ops.migrate.scripts import MigrationScripts


@dataclass
class DoctorContext:
    manager: TenantDatabaseManager
    scripts: MigrationScripts
    # Filled by the connectivity check: the checks after it look only at servers that
    # answered, so an unreachable server is one FAIL row, not one per check.
    reachable: dict[str, Backend] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)

    def where(self, server: str) -> str:
        """``main 127.0.0.1:5432``: a PostgreSQL server by name and address."""
        pg = self.manager.servers[server].settings.postgres
        return f"{server} {pg.host}:{pg.port}"

    @property
    def reachable_postgres(self) -> dict[str, PostgresBackend]:
        """The servers that answered, for the PostgreSQL checks (registered for that
        kind only)."""
        return {name: cast("PostgresBackend", b) for name, b in self.reachable.items()}

    @cached_property
    def status(self) -> StatusReport:
        """Every tenant's revision and state (one catalog pass per server)."""
        from docex_ops.migrate.plan import Selection, status

        return status(self.manager, self.scripts, Selection())
