"""Where the document API keeps each tenant's files: a directory of the tenant's own.

Per kind, because the tenant's place differs: next to the tenant's database file
on SQLite (one directory holds all of a tenant), ``<documents_root>/<schema>/files``
on PostgreSQL (named after the schema, so directory and schema match one to one).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from docex_ops.backends.base import Backend
from docex_ops.backends.registry import KindRegistry

if TYPE_CHECKING:
    from docex_ops.backends.sqlite import SqliteBackend

FILES_DIRS = KindRegistry[Callable[[Backend, str], Path]]("the document API's files", {
    "postgresql": "docex_ops.compat.docex.tenant_dirs:schema_files_dir",
    "sqlite": "docex_ops.compat.docex.tenant_dirs:beside_file_dir",
})


def files_dir(backend: Backend, tenant_id: str) -> Path:
    """The tenant's own directory for document files."""
    return FILES_DIRS.for_kind(backend.kind)(backend, tenant_id)


def schema_files_dir(backend: Backend, tenant_id: str) -> Path:
    root = backend.settings.documents_root or Path.cwd() / "storage"
    return root.resolve() / backend.location(tenant_id) / "files"


def beside_file_dir(backend: Backend, tenant_id: str) -> Path:
    return cast("SqliteBackend", backend).path(tenant_id).parent / "files"
