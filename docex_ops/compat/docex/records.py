"""What DocEX 2.9.9 writes, in its formats: id prefixes, names, content types.

Kept apart from the API so the formats live in one place and can be compared
with DocEX's own (docex/db/models.py, docex/utils/*) when DocEX changes.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# DocEX's ids: a three-letter prefix and a uuid4 hex (docex.db.models.generate_id).
PREFIXES = {"basket": "bas", "document": "doc", "metadata": "dmt", "event": "evt",
            "file_history": "fhi", "operation": "ope"}

BASKET_STATUS = "active"
DOCUMENT_STATUS = "RECEIVED"
DOCUMENT_TYPE = "file"
METADATA_TYPE = "custom"
OPERATION_ADD = "ADD"        # DocEX's operation_type for an add
EVENT_DUPLICATE = "DUPLICATE"  # DocEX's event when the same file is added to a basket again
NAME_MAX = 80                # DocEX sanitizes basket and file names to 80 characters

# DocEX's own extension lists (docex.utils.file_utils), so content_type and the
# text/binary decision match what DocEX would record for the same file.
BINARY_EXTS = frozenset({".pdf", ".jpg", ".jpeg", ".png", ".gif", ".doc", ".docx", ".xls",
                         ".xlsx", ".zip", ".tar", ".gz", ".exe", ".bin", ".ppt", ".pptx",
                         ".mp3", ".mp4"})
CONTENT_TYPES = {
    ".txt": "text/plain", ".html": "text/html", ".htm": "text/html",
    ".json": "application/json", ".xml": "application/xml", ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv", ".md": "text/markdown", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml",
}
_TEXT_BYTES = frozenset(range(32, 128)) | set(b"\r\n\t")


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}_{uuid.uuid4().hex}"


def now() -> datetime:
    """DocEX stores UTC in ``timestamp without time zone`` columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def sanitize_name(name: str, max_length: int = NAME_MAX) -> str:
    """DocEX's name rule: spaces and unsafe characters to ``_``, trimmed, bounded."""
    name = re.sub(r"_+", "_", re.sub(r"[^\w\-_.]", "_", name.replace(" ", "_"))).strip("_.")
    return name[:max_length] or "unnamed"


def basket_dir_name(name: str, basket_id: str) -> str:
    """``{name}_{last 4 of the id}``, as DocEX names a basket's directory."""
    return f"{sanitize_name(name)}_{basket_id.removeprefix('bas_')[-4:]}"


def document_names(source: Path, document_id: str, metadata: dict[str, Any]) -> tuple[str, str]:
    """(``document.name``, ``document.path``): the readable name and the stored
    file name ``{name}_{last 6 of the id}{ext}``, relative to the basket directory."""
    original = metadata.get("original_filename") or source.name
    stem, suffix = sanitize_name(Path(str(original)).stem), source.suffix
    return f"{stem}{suffix}", f"{stem}_{document_id.removeprefix('doc_')[-6:]}{suffix}"


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or (
        mimetypes.guess_type(path.as_posix())[0] or "application/octet-stream")


def is_binary(path: Path, head: bytes) -> bool:
    """DocEX's test: a binary extension, or any byte in the first KiB that is
    not printable ASCII or whitespace."""
    return path.suffix.lower() in BINARY_EXTS or not set(head[:1024]) <= _TEXT_BYTES


@dataclass(frozen=True)
class Digest:
    """What DocEX records for a file's bytes: checksum, size and its text (None: binary)."""

    checksum: str
    size: int
    text: str | None


def digest(path: Path, data: bytes) -> Digest:
    """DocEX's rule: a binary file is hashed as bytes; a text file is read as text
    (``Path.read_text``: universal newlines, so CRLF counts as LF) and the checksum
    and size are those of that text encoded as UTF-8. The file itself keeps its bytes.
    Text that is not UTF-8 (DocEX fails to add it) is recorded as binary."""
    if not is_binary(path, data[:1024]):
        try:
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            pass
        else:
            encoded = text.encode("utf-8")
            return Digest(hashlib.sha256(encoded).hexdigest(), len(encoded), text)
    return Digest(hashlib.sha256(data).hexdigest(), len(data), None)


def metadata_value(value: Any) -> str:
    """DocEX stores every metadata value JSON-encoded in a text column."""
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(value))


def decode_metadata_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # written by something else than DocEX: keep it as text
        return raw


def storage_config_column(config: dict[str, Any]) -> str:
    """DocEX json.dumps the storage config into its JSON column (a JSON string)."""
    return json.dumps(config)


def read_storage_config(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value) if value else {}
    return dict(value) if isinstance(value, dict) else {}
