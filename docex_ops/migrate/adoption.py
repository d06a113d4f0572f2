"""Recognise a tenant's revision from its structure: adoption and drift checks.

The reference for each revision is built, not guessed: a scratch tenant is
migrated step by step from base and its catalog read after every revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from docex_ops.backends.base import FOREIGN, Backend
from docex_ops.backends.catalog import Catalog, diff, without_names
from docex_ops.backends.scratch_tenant import scratch_tenant
from docex_ops.migrate.plan import Selection, select_tenants
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.migrate.servers import control_backend
from docex_ops.migrate.tenant import run_online

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager


def reference_catalogs(backend: Backend, scripts: MigrationScripts,
                       folder: Path | None = None) -> dict[str, Catalog]:
    """The catalog each revision produces, from a scratch tenant that never shows as a
    tenant and is removed afterwards (``folder``: SQLite, where its folder goes)."""
    with scratch_tenant(backend, "reference", folder) as (scratch, tenant_id):
        scratch.create(tenant_id, "")
        references = {}
        for revision in scripts.order:
            with scratch.migration_connection(tenant_id) as conn:
                run_online(scripts, conn, "upgrade", revision)
            references[revision] = without_names(scratch.catalog(tenant_id))
        return references


@dataclass(frozen=True)
class StructureResult:
    tenant_id: str
    recorded: str | None       # what alembic_version says (None: unversioned)
    matches: list[str]         # revisions whose structure the tenant has
    status: str                # adopted | matches | drift | ambiguous | would-adopt | skipped
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("adopted", "matches", "would-adopt", "skipped")


def compare(catalog: Catalog, references: dict[str, Catalog]) -> tuple[list[str], list[str]]:
    """(matching revisions, differences to the closest revision when none matches)."""
    mine = without_names(catalog)
    diffs = {rev: diff(mine, ref) for rev, ref in references.items()}
    matches = [rev for rev, problems in diffs.items() if not problems]
    if matches:
        return matches, []
    closest = min(diffs, key=lambda rev: len(diffs[rev]))
    return [], [f"closest revision {closest}:"] + diffs[closest]


def adopt(manager: TenantDatabaseManager, scripts: MigrationScripts, selection: Selection,
          dry_run: bool = False) -> list[StructureResult]:
    """Stamp each unversioned tenant at the one revision its structure matches.

    A foreign schema or file (none of DocEX's tables) is never adopted: it is reported
    ``skipped`` with the tables it holds.
    """
    tenants = select_tenants(manager, selection).tenants
    results = [StructureResult(t.tenant_id, None, [], "skipped",
                               [f"foreign: {t.detail}; not a DocEX tenant"])
               for t in tenants if t.condition == FOREIGN]
    candidates = [t for t in tenants if t.revision is None and t.tables and t.condition is None]
    if not candidates:
        return results
    references = reference_catalogs(control_backend(manager), scripts)
    for info in candidates:
        backend = manager.backend_of(info.tenant_id)
        matches, problems = compare(backend.catalog(info.tenant_id), references)
        if not matches:
            results.append(StructureResult(info.tenant_id, None, [], "drift", problems))
        elif len(matches) > 1:
            results.append(StructureResult(info.tenant_id, None, matches, "ambiguous",
                                           ["several revisions have this structure"]))
        elif dry_run:
            results.append(StructureResult(info.tenant_id, None, matches, "would-adopt"))
        else:
            from docex_ops.schema.ddl import version_table_ddl  # only when stamping

            with backend.migration_connection(info.tenant_id) as conn:
                backend.execute_script(conn, version_table_ddl(matches[0]))
                backend.check_migrated(conn, info.tenant_id, matches[0])
            results.append(StructureResult(info.tenant_id, None, matches, "adopted"))
    return results


def check(manager: TenantDatabaseManager, scripts: MigrationScripts, selection: Selection
          ) -> list[StructureResult]:
    """Compare every versioned tenant with what its recorded revision should look like."""
    versioned = [t for t in select_tenants(manager, selection).tenants if t.revision is not None]
    if not versioned:
        return []
    references = reference_catalogs(control_backend(manager), scripts)
    results = []
    for info in versioned:
        assert info.revision is not None
        if info.revision not in references:
            results.append(StructureResult(info.tenant_id, info.revision, [], "drift",
                                           [f"revision {info.revision} is not in the history"]))
            continue
        catalog = manager.backend_of(info.tenant_id).catalog(info.tenant_id)
        problems = diff(without_names(catalog),
                        references[info.revision])
        results.append(StructureResult(info.tenant_id, info.revision,
                                       [] if problems else [info.revision],
                                       "drift" if problems else "matches", problems))
    return results
