"""Document files on disk: stored atomically with their sha256, read back verified."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from docex_ops.compat.docex import records

DIR_MODE = 0o750
FILE_MODE = 0o640
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    path: Path
    size: int
    sha256: str
    head: bytes  # the first KiB, for DocEX's text/binary decision


def store(source: Path, dest: Path) -> StoredFile:
    """Copy ``source`` to ``dest`` (created 0640 in a 0750 directory), hashing on the way.

    Written under a temporary name and renamed, so a crash never leaves a
    half-written document file where the database would point.
    """
    if not source.is_file():
        raise FileNotFoundError(f"document source {source} is not a readable file")
    dest.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with source.open("rb") as reader, os.fdopen(fd, "wb") as writer:
            while chunk := reader.read(_CHUNK):
                if len(head) < 1024:
                    head += chunk[:1024 - len(head)]
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return StoredFile(dest, size, digest.hexdigest(), head)


def read_verified(path: Path, checksum: str, what: str) -> bytes:
    """The file's bytes; RuntimeError if they no longer match the recorded checksum.

    The checksum is DocEX's (see records.digest: a text file's is that of its text
    with LF line ends); the plain sha256 of the bytes is accepted too, as docex-ops
    recorded it for text files before it followed DocEX there."""
    data = path.read_bytes()
    actual = records.digest(path, data).checksum
    if checksum not in (actual, hashlib.sha256(data).hexdigest()):
        raise RuntimeError(f"{what}: file {path} has sha256 checksum {actual}, the database "
                           f"recorded {checksum}; the file was changed outside DocEX: restore it "
                           "from backup")
    return data
