"""``backup.signing_key_file``: the key that authenticates backup manifests.

With a key, ``backup create`` signs each manifest (HMAC-SHA256) and ``verify``
and ``restore`` refuse one whose signature is missing or wrong. The file must
exist, be a regular file, hold a non-empty key and be readable by its owner
only: a key others can read authenticates nothing. Checked when the
configuration is loaded and again, on the open file, when the key is read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from docex_ops.config.settings import ConfigError

KEY = "backup.signing_key_file"


def parse_backup(section: Mapping[str, Any], base: Path) -> Path | None:
    """The configured key file (resolved against ``base``), checked; None without one."""
    value = section.get("signing_key_file")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{KEY}: expected a file path, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    read_signing_key(path)
    return path


def read_signing_key(path: Path) -> bytes:
    """The key in ``path`` (surrounding whitespace removed); ConfigError, one line, if the
    file is missing, empty, not a regular file or readable by group or others."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"{KEY}: cannot open {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{KEY}: {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(f"{KEY}: {path} is readable or writable by group or others "
                              f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 {path}")
        with os.fdopen(os.dup(fd), "rb") as handle:
            key = handle.read().strip()
    finally:
        os.close(fd)
    if not key:
        raise ConfigError(f"{KEY}: {path} is empty; write a random key into it, e.g. "
                          f"openssl rand -hex 32 > {path}")
    return key
