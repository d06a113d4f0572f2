"""The source's revision: recorded in its alembic_version, else recognised from its
structure against reference catalogs built in a scratch tenant of the source's kind."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path

from docex_ops.backends import Backend, make_backend
from docex_ops.backends.registry import KindRegistry
from docex_ops.backends.scratch_tenant import sqlite_in
from docex_ops.migrate.adoption import compare, reference_catalogs
from docex_ops.migrate.scripts import MigrationScripts
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.source import SourceSpec, SourceView


def source_revision(view: SourceView, spec: SourceSpec, backend: Backend,
                    scripts: MigrationScripts, given: str | None = None) -> str:
    """The revision to provision targets at; LookupError when it cannot be told."""
    recorded = view.revision()
    if given is not None:
        return scripts.resolve(given, None) or given
    if recorded is not None:
        scripts.position(recorded)  # RevisionError (a LookupError's sibling) if unknown
        return recorded
    # Only DocEX's tables tell the revision: anything else is never read (split.plan says so).
    catalog = {t: v for t, v in view.catalog().items() if t in TABLE_NAMES}
    matches, problems = compare(catalog, _references(spec, backend, scripts))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise LookupError(f"the source {spec.describe()} matches several revisions "
                          f"({', '.join(matches)}); pass --source-revision")
    raise LookupError(f"the source {spec.describe()} matches no known DocEX revision; "
                      + "; ".join(problems[:8]))


def _references(spec: SourceSpec, backend: Backend, scripts: MigrationScripts
                ) -> dict[str, dict[str, dict[str, object]]]:
    # Built in a scratch tenant of the source's kind (held, never listed as a tenant):
    # among the targets when they are of that kind, else where SCRATCH_STORES says.
    if backend.kind == spec.kind:
        return reference_catalogs(backend, scripts)
    with SCRATCH_STORES.for_kind(spec.kind)(spec, backend) as (store, folder):
        return reference_catalogs(store, scripts, folder)


@contextmanager
def _sqlite_store(spec: SourceSpec, backend: Backend) -> Iterator[tuple[Backend, Path | None]]:
    # PostgreSQL targets have no storage root: the temp folder.
    folder = Path(tempfile.gettempdir())
    yield sqlite_in(backend.settings, folder), folder


@contextmanager
def _pg_store(spec: SourceSpec, backend: Backend) -> Iterator[tuple[Backend, Path | None]]:
    # SQLite targets: the scratch schema lives (briefly) in the source database, never in
    # the source schema; --source-revision avoids it.
    assert spec.postgres is not None
    settings = replace(backend.settings, db_type="postgresql",
                       postgres=replace(spec.postgres, schema_template="tenant_{tenant_id}"))
    source_server = make_backend(settings)
    try:
        yield source_server, None
    finally:
        source_server.dispose()


ScratchStore = Callable[[SourceSpec, Backend], AbstractContextManager[tuple[Backend, Path | None]]]
SCRATCH_STORES = KindRegistry[ScratchStore]("revision references", {
    "postgresql": "docex_ops.split.revision:_pg_store",
    "sqlite": "docex_ops.split.revision:_sqlite_store",
})
