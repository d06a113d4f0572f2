"""The one place that lists the isolation checks, per database kind, in run order.

Like Alembic's autogenerate comparators: each check is a small function in
its own module; adding a check is one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from docex_ops.isolation import (
    leftovers,
    pg_contents,
    pg_pooler,
    pg_privileges,
    pg_references,
    pg_routing,
    pg_search_path,
    sqlite_contents,
    sqlite_files,
)
from docex_ops.isolation.context import AuditContext
from docex_ops.isolation.results import CheckResult

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


@dataclass(frozen=True)
class Check:
    name: str
    kind: str
    run: Callable[[AuditContext], list[CheckResult]]
    summary: str
    needs_catalog: bool = True


CHECKS: tuple[Check, ...] = (
    Check("contents", POSTGRESQL, pg_contents.check_contents,
          "the tenant schema holds the DocEX tables and nothing unexpected"),
    Check("references", POSTGRESQL, pg_references.check_references,
          "no FK, view, rule, default, trigger, policy or function reaches another tenant "
          "or a table in public"),
    Check("shadowing", POSTGRESQL, pg_search_path.check_shadowing,
          "no DocEX-named object in public or another shared schema on the search path"),
    Check("search_path", POSTGRESQL, pg_search_path.check_search_path,
          "the default search_path names no tenant schema"),
    Check("privileges", POSTGRESQL, pg_privileges.check_privileges,
          "PUBLIC and other tenants' roles have no right on a tenant"),
    Check("readers", POSTGRESQL, pg_privileges.check_readers,
          "who, besides owners and superusers, can read each tenant"),
    Check("pooler", POSTGRESQL, pg_pooler.check_pooler,
          "no transaction-mode pooler between docex-ops and the server"),
    Check("routing", POSTGRESQL, pg_routing.check_routing,
          "each tenant connection routes to its own schema only (rolled-back canary)",
          needs_catalog=False),
    Check("leftovers", POSTGRESQL, leftovers.check_leftovers,
          "no scratch schema or role (docex$...) is left behind", needs_catalog=False),
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
)


def checks_for(kind: str) -> list[Check]:
    return [c for c in CHECKS if c.kind == kind]
