"""The one place that lists the isolation checks, per database kind, in run order.

Like Alembic's autogenerate comparators: each check is a small function in
its own module; adding a check is one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from docex_ops.backends.base import Backend
from docex_ops.backends.registry import KindRegistry
from docex_ops.isolation import (
    leftovers,
    pg_citus_schemas,
    pg_citus_shared,
    pg_code,
    pg_contents,
    pg_default_privileges,
    pg_pooler,
    pg_privileges,
    pg_probe,
    pg_reach_in,
    pg_references,
    pg_roles,
    pg_routing,
    pg_search_path,
    pg_writable_path,
    sqlite_code,
    sqlite_contents,
    sqlite_files,
)
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import CheckResult

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


@dataclass(frozen=True)
class Check:
    name: str
    kind: str
    run: Callable[[IsolationContext], list[CheckResult]]
    summary: str
    needs_catalog: bool = True
    live: bool = False  # acts on the server (connections, rolled-back writes), not catalog only
    topology: str | None = None  # only on this topology shape (Topology.shape); None: any


CHECKS: tuple[Check, ...] = (
    Check("contents", POSTGRESQL, pg_contents.check_contents,
          "the tenant schema holds the DocEX tables and nothing unexpected"),
    Check("references", POSTGRESQL, pg_references.check_references,
          "no FK, view, rule, default, trigger, policy or function reaches another tenant "
          "or a table in public"),
    Check("reach_in", POSTGRESQL, pg_reach_in.check_reach_in,
          "nothing outside the tenants (view, routine, trigger, rule, policy, default, "
          "publication) depends on or names a tenant"),
    Check("code", POSTGRESQL, pg_code.check_code,
          "no routine, trigger or rule in a tenant, no expression calling code outside it"),
    Check("shadowing", POSTGRESQL, pg_search_path.check_shadowing,
          "no DocEX-named object in public or another shared schema on the search path"),
    Check("search_path", POSTGRESQL, pg_search_path.check_search_path,
          "the default search_path names no tenant schema"),
    Check("writable_path", POSTGRESQL, pg_writable_path.check_writable_path,
          "only operators can create objects in public or another schema on a search path"),
    Check("privileges", POSTGRESQL, pg_privileges.check_privileges,
          "PUBLIC and other tenants' roles have no right on a tenant"),
    Check("default_privileges", POSTGRESQL, pg_default_privileges.check_default_privileges,
          "no default privilege grants a tenant's future objects to PUBLIC or another role"),
    Check("roles", POSTGRESQL, pg_roles.check_roles,
          "no role but the tenant's own and the operators reaches a tenant; powerful logins"),
    Check("readers", POSTGRESQL, pg_privileges.check_readers,
          "who, besides owners and superusers, can read each tenant"),
    Check("pooler", POSTGRESQL, pg_pooler.check_pooler,
          "no transaction-mode pooler between docex-ops and the server"),
    Check("routing", POSTGRESQL, pg_routing.check_routing,
          "each tenant connection routes to its own schema only (rolled-back canary)",
          needs_catalog=False, live=True),
    Check("probe", POSTGRESQL, pg_probe.check_probe,
          "as a sample of tenant roles, reading and writing other tenants and public is "
          "denied (rolled back)", live=True),
    Check("leftovers", POSTGRESQL, leftovers.check_leftovers,
          "no scratch schema or role (docex$...) is left behind", needs_catalog=False),
    Check(pg_citus_schemas.DISTRIBUTED, POSTGRESQL, pg_citus_schemas.check_distributed,
          "(Citus) each tenant schema is a distributed schema, its tables colocated on one "
          "worker", topology="citus"),
    Check(pg_citus_schemas.COORDINATOR, POSTGRESQL, pg_citus_schemas.check_coordinator,
          "(Citus) no table of a tenant keeps rows on the coordinator", topology="citus"),
    Check(pg_citus_shared.NAME, POSTGRESQL, pg_citus_shared.check_shared_tables,
          "(Citus) no reference or distributed table outside the tenant schemas names a "
          "tenant", topology="citus"),
    Check("file_location", SQLITE, sqlite_files.check_location,
          "the file is a regular file inside its own tenant directory and the storage root"),
    Check("file_sharing", SQLITE, sqlite_files.check_sharing,
          "no two tenants share a file (inode, hard link, symlink)"),
    Check("file_permissions", SQLITE, sqlite_files.check_permissions,
          "file and directory not group/world-writable, file not world-readable"),
    Check("sidecars", SQLITE, sqlite_files.check_sidecars,
          "no -wal/-journal/-shm that is linked, shared or owned by someone else"),
    Check("integrity", SQLITE, sqlite_contents.check_integrity, "PRAGMA quick_check is ok"),
    Check("contents", SQLITE, sqlite_contents.check_contents,
          "the DocEX tables, nothing unexpected, no view or trigger naming another database"),
    Check("leftovers", SQLITE, leftovers.check_leftovers,
          "no scratch file or folder (.docex-...) is left in the storage root"),
    Check("code", SQLITE, sqlite_code.check_code, "no view or trigger in the tenant file"),
)


# The read-only catalog snapshot the catalog checks of a kind share (kinds without one,
# SQLite, read each file as they go).
CATALOG_SNAPSHOTS = KindRegistry[Callable[[Backend], AbstractContextManager[Connection]]](
    "isolation catalog snapshot", {"postgresql": "docex_ops.isolation.pg_facts:backend_snapshot"})


def checks_for(kind: str, shape: str | None = None) -> list[Check]:
    """The checks of ``kind``; those of one topology only when ``shape`` is it."""
    return [c for c in CHECKS if c.kind == kind and c.topology in (None, shape)]
