"""Files a command writes for someone else to read (a report page, a metrics textfile):
replaced whole, so that a reader sees the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_atomically(path: Path, data: bytes, mode: int | None = None) -> int:
    """Write ``data`` to ``path`` through a temp file in the same folder (fsync, rename
    over, fsync the folder); returns the bytes written. ``mode``: default the replaced
    file's own, else what ``open()`` would give (0o644 less the umask)."""
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644 & ~_umask()
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)
    return len(data)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
