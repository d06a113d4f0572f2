"""The manifest written beside every archive: what it holds and how to prove it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from docex_ops.backends.digest import TableDigest
from docex_ops.tenancy import validate_tenant_id

MANIFEST_SUFFIX = ".manifest.json"
# 1: unsigned. 2: carries ``signature`` (older docex-ops refuse it by its format, clearly).
FORMAT_VERSION = 1
SIGNED_FORMAT = 2
FORMATS = (FORMAT_VERSION, SIGNED_FORMAT)
# What a copy is: a backup an operator took, or the safety copy a destructive act took
# first. Written (and signed) only for safety copies, so archives read as before.
ARCHIVE, SAFETY = "archive", "safety"
KINDS = (ARCHIVE, SAFETY)
LEGACY_SAFETY_DIR = "pre-restore"  # where older releases put restore's safety copies


class BackupUsageError(ValueError):
    """The archive or manifest given cannot be used as asked (exit 2)."""


@dataclass(frozen=True)
class Manifest:
    tenant_id: str
    backend: str
    location: str                 # schema or file at backup time
    revision: str | None          # the tenant's own alembic_version
    tables: dict[str, TableDigest]
    archive: str                  # file name, in the manifest's directory
    archive_sha256: str
    archive_size: int
    tenants_in_archive: int       # PostgreSQL batches several schemas per pg_dump
    server_version: str
    tool_version: str
    docex_ops_version: str
    started_at: str
    finished_at: str
    format: int = FORMAT_VERSION
    signature: str | None = None  # "hmac-sha256:<hex>" over ``signed_content``
    kind: str = ARCHIVE           # archive | safety (see KINDS)
    path: Path | None = field(default=None, compare=False)
    # The canonical JSON the signature covers: every field but the signature, as read.
    signed_content: bytes = field(default=b"", compare=False, repr=False)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    @property
    def is_safety(self) -> bool:
        """A safety copy: so marked, or in the folder older releases kept them in."""
        return self.kind == SAFETY or (self.path is not None
                                       and self.path.parent.name == LEGACY_SAFETY_DIR)

    @property
    def archive_path(self) -> Path:
        assert self.path is not None, "manifest not read from a file"
        return self.path.parent / self.archive

    def to_dict(self) -> dict[str, Any]:
        # Built field by field: dataclasses.asdict deep-copies every table digest, which
        # cost more than the encoding in a backup of many small tenants.
        data = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("path", "signed_content", "signature")}
        data["tables"] = {name: {"checksum": t.checksum, "rows": t.rows}
                          for name, t in self.tables.items()}
        if self.signature is not None:
            data["signature"] = self.signature
        if self.kind == ARCHIVE:
            del data["kind"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def canonical_json(data: dict[str, Any]) -> bytes:
    """What a signature covers: the manifest without its signature, keys sorted, no
    spaces, ASCII only: one byte string for one content, however the file is laid out."""
    content = {k: v for k, v in data.items() if k != "signature"}
    return json.dumps(content, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def write_manifest(manifest: Manifest, path: Path) -> Path:
    """Write atomically and durably: a manifest that exists is complete and on disk."""
    # Imported here: reading manifests (metrics --backups) need not load SQLAlchemy.
    from docex_ops.backends.scratch import hold_new_file

    with hold_new_file(path.parent, "manifest", ".tmp") as tmp:  # a scratch file: cleanup
        with open(tmp, "w", encoding="utf-8") as handle:              # finds it if we die
            handle.write(manifest.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    return path


def read_manifest(path: Path, signed: bool = True) -> Manifest:
    """The manifest at ``path``, checked. ``signed=False``: without the canonical bytes a
    signature is checked against (``signed_content`` empty), for readers with no key."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        content = canonical_json(data) if signed else b""
        tables = {name: TableDigest(int(t["rows"]), str(t["checksum"]))
                  for name, t in data.pop("tables").items()}
        if data.get("format") not in FORMATS:
            raise BackupUsageError(f"{path}: manifest format {data.get('format')!r} is not "
                                   f"one of {FORMATS}; use the docex-ops that wrote it")
        manifest = Manifest(tables=tables, path=path, signed_content=content, **data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, BackupUsageError):
            raise
        raise BackupUsageError(f"{path} is not a readable docex-ops manifest: {exc}") from exc
    validate_tenant_id(manifest.tenant_id)
    if manifest.kind not in KINDS:
        raise BackupUsageError(f"{path}: kind {manifest.kind!r} is not one of {KINDS}")
    if Path(manifest.archive).name != manifest.archive:  # never points outside its folder
        raise BackupUsageError(f"{path}: archive name {manifest.archive!r} is not a plain "
                               "file name")
    return manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_manifests(path: Path) -> list[Manifest]:
    """Manifests for ``path``: a manifest file, an archive (its manifests), or a folder
    (every manifest under it), sorted by tenant then time."""
    if path.is_dir():
        found = [read_manifest(p) for p in sorted(path.rglob("*" + MANIFEST_SUFFIX))]
    elif path.name.endswith(MANIFEST_SUFFIX):
        found = [read_manifest(path)]
    elif path.is_file():
        found = [m for m in (read_manifest(p) for p in
                             sorted(path.parent.glob("*" + MANIFEST_SUFFIX)))
                 if m.archive == path.name]
        if not found:
            raise BackupUsageError(f"no manifest beside {path} describes it; an archive "
                                   "without its manifest cannot be verified or restored")
    else:
        raise BackupUsageError(f"{path} does not exist")
    return sorted(found, key=lambda m: (m.tenant_id, m.finished_at))


def safety_folder(folder: Path) -> Path:
    """Where safety copies of the backups in ``folder`` go by default: beside it, never
    inside it (``<folder>.safety``), so pruning the backups never weighs them."""
    folder = folder.resolve()
    return folder.with_name(folder.name + ".safety")


def select_manifest(path: Path, source_tenant: str | None) -> Manifest:
    """The one manifest a restore uses; a batch archive needs the source tenant named."""
    found = find_manifests(path)
    if source_tenant is not None:
        found = [m for m in found if m.tenant_id == source_tenant]
    if len(found) == 1:
        return found[0]
    if not found:
        raise BackupUsageError(f"{path} holds no backup of tenant {source_tenant!r}")
    names = ", ".join(sorted({m.tenant_id for m in found}))
    raise BackupUsageError(f"{path} holds {len(found)} backups ({names}); pass one manifest "
                           "file, or --from-tenant ID for a batch archive")
