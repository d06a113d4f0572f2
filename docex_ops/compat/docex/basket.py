"""Baskets and documents of one tenant, written exactly as DocEX writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from docex_ops import audit_trail
from docex_ops.compat.docex import files, records
from docex_ops.schema.head import doc_events, document, document_metadata, operations

if TYPE_CHECKING:
    from docex_ops.compat.docex.client import DocEX


@dataclass(frozen=True)
class Document:
    """One stored document. ``read()`` returns its bytes, checked against the checksum."""

    id: str
    basket_id: str
    name: str
    source: str
    path: str            # relative to the basket's directory, as DocEX stores it
    content_type: str | None
    document_type: str
    size: int | None
    checksum: str
    status: str
    created_at: datetime
    updated_at: datetime
    file_path: Path = field(repr=False)
    _client: DocEX = field(repr=False, compare=False)

    def read(self) -> bytes:
        return files.read_verified(self.file_path, self.checksum,
                                   f"tenant {self._client.tenant_id!r} document {self.id}")

    def get_metadata(self) -> dict[str, Any]:
        """The document's metadata, values decoded from DocEX's JSON text."""
        with self._client.transaction() as session:
            rows = session.execute(
                select(document_metadata.c.key, document_metadata.c.value)
                .where(document_metadata.c.document_id == self.id)
                .order_by(document_metadata.c.created_at, document_metadata.c.id)).all()
        return {key: records.decode_metadata_value(value) for key, value in rows}


@dataclass(frozen=True)
class Basket:
    id: str
    name: str
    description: str | None
    storage_config: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    _client: DocEX = field(repr=False, compare=False)

    @property
    def directory(self) -> Path:
        return Path(self.storage_config["path"])

    def add(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Document:
        """Store the file in the tenant's own directory and record it as DocEX 2.9.9
        does: rows in document, document_metadata and operations (DocEX writes no
        file_history or doc_events row for an add), in one transaction. The same file
        (checksum and source) added to the basket again is not stored twice: like
        DocEX, a DUPLICATE event is recorded and the existing document returned. The
        new file is removed again if the transaction fails or finds a duplicate."""
        source = Path(path)
        tenant, actor = self._client.tenant_id, self._client.actor
        meta = dict(metadata or {})
        meta.setdefault("original_filename", source.name)
        document_id = records.new_id("document")
        name, relative = records.document_names(source, document_id, meta)
        stored: files.StoredFile | None = None
        try:
            stored = files.store(source, self.directory / relative)
            row = self._document_row(document_id, source, name, relative,
                                     _digest(source, stored))
            with self._client.transaction() as session:
                existing = self._duplicate_of(session, row)
                if existing is None:
                    self._insert_rows(session, row, meta)
        except (OSError, RuntimeError) as exc:
            if stored is not None:
                stored.path.unlink(missing_ok=True)
            audit_trail.record("document.add", tenant, document_id, audit_trail.FAILED,
                         {"basket": self.id, "source": str(source), "error": str(exc)},
                         actor=actor)
            raise
        if existing is not None:
            stored.path.unlink(missing_ok=True)
            row = existing
        audit_trail.record("document.add", tenant, row["id"], audit_trail.OK,
                     {"basket": self.id, "name": row["name"], "size": row["size"],
                      "checksum": row["checksum"], "duplicate": existing is not None},
                     actor=actor)
        return self._document(row)

    def _duplicate_of(self, session: Session, row: dict[str, Any]) -> dict[str, Any] | None:
        """DocEX's duplicate rule: same checksum and source in this basket. Records
        DocEX's DUPLICATE event on the existing document when there is one."""
        found = session.execute(select(document).where(
            document.c.basket_id == self.id, document.c.checksum == row["checksum"],
            document.c.source == row["source"]).order_by(document.c.created_at)).first()
        if found is None:
            return None
        session.execute(insert(doc_events).values(
            id=records.new_id("event"), basket_id=self.id, document_id=found.id,
            event_type=records.EVENT_DUPLICATE, event_timestamp=row["created_at"],
            data={"source": row["source"]}, source="docex", status="PENDING",
            created_at=row["created_at"], updated_at=row["created_at"]))
        return dict(found._asdict())

    @staticmethod
    def _insert_rows(session: Session, row: dict[str, Any], meta: dict[str, Any]) -> None:
        created = row["created_at"]
        session.execute(insert(document).values(row))
        session.execute(insert(document_metadata), [
            {"id": records.new_id("metadata"), "document_id": row["id"], "key": key,
             "value": records.metadata_value(value), "metadata_type": records.METADATA_TYPE,
             "created_at": created, "updated_at": created}
            for key, value in meta.items()])
        session.execute(insert(operations).values(
            id=records.new_id("operation"), document_id=row["id"],
            operation_type=records.OPERATION_ADD, status="success",
            details={"source": row["source"], "stored_path": row["path"],
                     "document_type": row["document_type"], "size": row["size"],
                     "checksum": row["checksum"]},
            created_at=created, completed_at=created))

    def list_documents(self) -> list[Document]:
        """This basket's documents, newest first (DocEX's default order)."""
        with self._client.transaction() as session:
            rows = session.execute(
                select(document).where(document.c.basket_id == self.id)
                .order_by(document.c.created_at.desc(), document.c.id)).all()
        return [self._document(r._asdict()) for r in rows]

    def get_document(self, document_id: str) -> Document | None:
        with self._client.transaction() as session:
            row = session.execute(select(document).where(
                document.c.id == document_id, document.c.basket_id == self.id)).first()
        return None if row is None else self._document(row._asdict())

    def _document_row(self, document_id: str, source: Path, name: str, relative: str,
                      digest: records.Digest) -> dict[str, Any]:
        created = records.now()
        return {"id": document_id, "basket_id": self.id, "name": name, "source": str(source),
                "path": relative, "content_type": records.content_type(source),
                "document_type": records.DOCUMENT_TYPE, "content": {"content": digest.text},
                "raw_content": digest.text, "size": digest.size, "checksum": digest.checksum,
                "status": records.DOCUMENT_STATUS, "processing_attempts": 0,
                "created_at": created, "updated_at": created}

    def _document(self, row: dict[str, Any]) -> Document:
        return Document(
            id=row["id"], basket_id=row["basket_id"], name=row["name"], source=row["source"],
            path=row["path"], content_type=row["content_type"],
            document_type=row["document_type"], size=row["size"], checksum=row["checksum"],
            status=row["status"], created_at=row["created_at"], updated_at=row["updated_at"],
            file_path=self.directory / row["path"], _client=self._client)


def _digest(source: Path, stored: files.StoredFile) -> records.Digest:
    """DocEX's checksum, size and text of the stored file; a binary file was hashed
    while it was stored, so it is not read a second time."""
    if records.is_binary(source, stored.head):
        return records.Digest(stored.sha256, stored.size, None)
    return records.digest(source, stored.path.read_bytes())


def basket_from_row(row: Row[Any], client: DocEX) -> Basket:
    data = row._asdict()
    return Basket(id=data["id"], name=data["name"], description=data["description"],
                  storage_config=records.read_storage_config(data["storage_config"]),
                  status=data["status"], created_at=data["created_at"],
                  updated_at=data["updated_at"], _client=client)
