"""Each revision's rendered SQL kept on disk, so a lint reads it back without importing
Alembic and SQLAlchemy (their import alone costs more than the whole lint).

An entry is keyed by everything its rendering can depend on: the dialect, the step
(previous -> revision), the revision file's content, the script directory's other files
(env.py, helpers), docex-ops' own code (every module's size and mtime: an installed
upgrade or an edit in a checkout both change it) and the installed Alembic and
SQLAlchemy. A stale entry would be a wrong lint, so anything uncertain is a miss: a
revision whose id is not declared plainly in its file is rendered every time. What the
key cannot see: a revision whose SQL depends on the environment or on a module outside
docex-ops and its script directory; run such a lint with ``DOCEX_OPS_CACHE_DIR=``.

The directory: ``$DOCEX_OPS_CACHE_DIR`` (empty: no cache), else
``$XDG_CACHE_HOME/docex-ops`` or ``~/.cache/docex-ops``; a directory that cannot be
written just means rendering every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from docex_ops.migrate.scripts import _DECLARED

CACHE_ENV = "DOCEX_OPS_CACHE_DIR"
FORMAT = "1"  # bump when an entry's shape or the rendering's meaning changes
_PACKAGE = Path(__file__).resolve().parent.parent


def cache_dir() -> Path | None:
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured).expanduser() / "lint" if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "docex-ops" / "lint"


class RenderCache:
    """Rendered revisions of one script directory."""

    def __init__(self, location: Path, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_dir()
        self.location = location
        self._files: dict[str, Path] | None = None
        self._common: str | None = None

    def key(self, dialect: str, previous: str | None, revision: str) -> str | None:
        if self.root is None:
            return None
        path = self._revision_files().get(revision)
        if path is None:
            return None
        digest = hashlib.sha256()
        for part in (FORMAT, self._common_fingerprint(), dialect, previous or "", revision):
            digest.update(part.encode() + b"\0")
        digest.update(path.read_bytes())
        return digest.hexdigest()

    def derived_key(self, kind: str, *parts: str | None) -> str | None:
        """The key of something computed from cached renderings and ``parts`` alone;
        None when one of them is None (a rendering that is not cacheable)."""
        if self.root is None or any(part is None for part in parts):
            return None
        digest = hashlib.sha256()
        for part in (FORMAT, kind, *parts):
            digest.update(str(part).encode() + b"\0")
        return digest.hexdigest()

    def get(self, key: str | None) -> dict[str, Any] | None:
        if key is None or self.root is None:
            return None
        try:
            entry = json.loads((self.root / f"{key}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str | None, entry: dict[str, Any]) -> None:
        if key is None or self.root is None:
            return
        target = self.root / f"{key}.json"
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(entry), "utf-8")
            os.replace(partial, target)  # readers see a whole entry or none
        except OSError:  # not writable: the next lint renders again
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)

    def _revision_files(self) -> dict[str, Path]:
        """revision id -> its script, read from the text as ``scan_order`` reads it."""
        if self._files is None:
            self._files, duplicated = {}, set()
            for path in sorted((self.location / "versions").glob("*.py")):
                declared = {m["name"]: m["value"] for m in _DECLARED.finditer(
                    path.read_text("utf-8"))}
                value = declared.get("revision", "None")
                revision = "" if value == "None" else value[1:-1]
                if revision in self._files:  # two files claim it: neither is trusted
                    duplicated.add(revision)
                elif revision:
                    self._files[revision] = path
            for revision in duplicated:
                del self._files[revision]
        return self._files

    def _common_fingerprint(self) -> str:
        """What every entry depends on besides its own revision file (env.py, the
    templates, any helper module beside the revisions, docex-ops, Alembic)."""
        if self._common is None:
            digest = hashlib.sha256(_code_fingerprint().encode())
            own = set(self._revision_files().values())  # each in its own entry's key
            for path in sorted(self.location.rglob("*")):
                if path.is_file() and path.parent.name != "__pycache__" and path not in own:
                    digest.update(str(path.relative_to(self.location)).encode() + b"\0")
                    digest.update(path.read_bytes())
            self._common = digest.hexdigest()
        return self._common


@cache
def _code_fingerprint() -> str:
    """docex-ops' modules (size and mtime) and the installed Alembic and SQLAlchemy."""
    digest = hashlib.sha256()
    modules = []
    for folder, dirs, files in os.walk(_PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        modules += [os.path.join(folder, name) for name in files if name.endswith(".py")]
    for module in sorted(modules):
        stat = os.stat(module)
        digest.update(f"{module}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    for package in ("alembic", "sqlalchemy"):
        spec = find_spec(package)
        origin = Path(spec.origin) if spec and spec.origin else None
        if origin is not None:
            stat = origin.stat()
            digest.update(f"{package}:{origin}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
        for dist in origin.parent.parent.glob(f"{package}-*.dist-info") if origin else ():
            digest.update(dist.name.encode())  # the installed version, e.g. alembic-1.13.2
    return digest.hexdigest()
