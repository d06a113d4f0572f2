"""A throwaway tenant (reference catalogs, autogenerate) that no discovery ever lists.

It used to be an ordinary tenant (``zz_reference_1a2b3c4d``) created and dropped
around the work: a process killed in between left it in ``tenants list`` for
good. Now it lives in a scratch object named and held as ``docex_ops.backends.scratch``
says: PostgreSQL, a ``docex$<purpose>_<hex>`` schema on the (directory) server;
SQLite, a ``.docex-<purpose>-<hex>`` folder under the storage root holding one
tenant file. The backend handed out reaches only that object.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from docex_ops.backends import pg_scratch, scratch
from docex_ops.backends.base import Backend
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.backends.sqlite import DIR_MODE, SqliteBackend
from docex_ops.config.settings import Settings, SqliteSettings
from docex_ops.tenancy import validate_tenant_id

SCRATCH_TENANT = "scratch"  # the id the scratch backend knows its one tenant by


class _ScratchPostgres(PostgresBackend):
    """A PostgreSQL backend whose only tenant is one scratch schema."""

    def __init__(self, settings: Settings, schema: str) -> None:
        super().__init__(settings, worker_pool_size=1)
        self._scratch = schema

    def location(self, tenant_id: str) -> str:
        validate_tenant_id(tenant_id)
        return self._scratch


@contextmanager
def scratch_tenant(backend: Backend, purpose: str, folder: Path | None = None
                   ) -> Iterator[tuple[Backend, str]]:
    """(a backend reaching only the scratch tenant, its id), held and removed at the end.

    ``folder``: where a SQLite scratch folder goes (default: the storage root).
    """
    if backend.kind == "postgresql":
        server = backend  # the control server's
        assert isinstance(server, PostgresBackend)
        with scratch.hold_new_schema(server.admin_engine, purpose) as schema:
            pg = _ScratchPostgres(server.settings, schema)
            try:
                yield pg, SCRATCH_TENANT
            finally:
                try:
                    with pg.admin_engine.begin() as conn:
                        pg_scratch.drop_schema(conn, schema)
                finally:
                    pg.dispose()
        return
    assert isinstance(backend, SqliteBackend)
    parent = folder or backend.paths.root
    parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with scratch.hold_new_folder(parent, purpose) as held:
        yield sqlite_in(backend.settings, held), SCRATCH_TENANT


def sqlite_in(settings: Settings, folder: Path) -> SqliteBackend:
    """A SQLite backend whose storage root is ``folder`` (a scratch folder)."""
    return SqliteBackend(replace(settings, db_type="sqlite", sqlite=SqliteSettings(
        folder / "docex.db", str(folder / "tenant_{tenant_id}" / "docex.db"), folder)))
