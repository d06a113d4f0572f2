"""The DocEX tenant tables at head, as SQLAlchemy MetaData.

Schema-less on purpose: one MetaData serves every tenant, routed by the
connection's search_path (PostgreSQL) or by the file (SQLite). Mutating
``Table.schema`` per tenant is the DocEX bug that sent tenant A's queries to
tenant B. No naming convention either: unnamed constraints get PostgreSQL's
default names, as in a tenant DocEX made.

Head differs from DocEX 2.9.9 only by the "document object paths" revision:
``document.source``/``path`` and ``file_history.original_path``/``internal_path``
are ``text`` instead of ``varchar(255)``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from docex_ops.schema.names import TABLE_NAMES as TABLE_NAMES  # re-exported beside the tables

metadata = MetaData()



def _id() -> Column[str]:
    return Column("id", String(36), primary_key=True)


def _ts(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(), nullable=nullable)


docbasket = Table(
    "docbasket", metadata,
    _id(),
    Column("name", String(255), nullable=False),
    Column("description", Text),
    Column("storage_config", JSON, nullable=False),
    Column("status", String(50), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("name", name="uq_docbasket_name"),
)

document = Table(
    "document", metadata,
    _id(),
    Column("basket_id", String(36), ForeignKey("docbasket.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("source", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("content_type", String(100)),
    Column("document_type", String(50), nullable=False),
    Column("content", JSON),
    Column("raw_content", Text),
    Column("size", Integer),
    Column("checksum", String(64), nullable=False),
    Column("status", String(50), nullable=False),
    Column("processing_attempts", Integer, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

document_metadata = Table(
    "document_metadata", metadata,
    _id(),
    Column("document_id", String(36), ForeignKey("document.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", Text, nullable=False),
    Column("metadata_type", String(50), nullable=False),
    Column("coordination_id", Uuid()),
    _ts("created_at"),
    _ts("updated_at"),
)

file_history = Table(
    "file_history", metadata,
    _id(),
    Column("document_id", String(36), ForeignKey("document.id"), nullable=False),
    Column("original_path", Text),
    Column("internal_path", Text),
    _ts("created_at"),
)

operations = Table(
    "operations", metadata,
    _id(),
    Column("document_id", String(36), ForeignKey("document.id", ondelete="CASCADE"),
           nullable=False),
    Column("operation_type", String(100), nullable=False),
    Column("status", String(50), nullable=False),
    Column("details", JSON),
    Column("error", Text),
    _ts("created_at"),
    _ts("completed_at", nullable=True),
)

operation_dependencies = Table(
    "operation_dependencies", metadata,
    _id(),
    Column("operation_id", String(36), ForeignKey("operations.id", ondelete="CASCADE"),
           nullable=False),
    Column("depends_on", String(36), ForeignKey("operations.id", ondelete="CASCADE"),
           nullable=False),
    _ts("created_at"),
)

doc_events = Table(
    "doc_events", metadata,
    _id(),
    Column("basket_id", String(36), ForeignKey("docbasket.id", ondelete="CASCADE"),
           nullable=False),
    Column("document_id", String(36), ForeignKey("document.id")),
    Column("event_type", String(50), nullable=False),
    _ts("event_timestamp"),
    Column("data", JSON),
    Column("source", String(50), nullable=False, server_default=text("'docex'")),
    Column("status", String(20), nullable=False, server_default=text("'PENDING'")),
    Column("error_message", Text),
    _ts("created_at"),
    _ts("updated_at"),
)

processors = Table(
    "processors", metadata,
    _id(),
    Column("name", String(255), nullable=False, unique=True),
    Column("type", String(50), nullable=False),
    Column("description", Text),
    Column("config", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

processing_operations = Table(
    "processing_operations", metadata,
    _id(),
    Column("document_id", String(36), ForeignKey("document.id", ondelete="CASCADE"),
           nullable=False),
    Column("processor_id", String(36), ForeignKey("processors.id", ondelete="CASCADE"),
           nullable=False),
    Column("status", String(20), nullable=False),
    Column("input_metadata", JSON),
    Column("output_metadata", JSON),
    Column("error", Text),
    _ts("created_at"),
    _ts("completed_at", nullable=True),
)

transport_routes = Table(
    "transport_routes", metadata,
    _id(),
    Column("name", String(255), nullable=False, unique=True),
    Column("purpose", String(50), nullable=False),
    Column("protocol", String(50), nullable=False),
    Column("config", JSON, nullable=False),
    Column("can_upload", Boolean, nullable=False),
    Column("can_download", Boolean, nullable=False),
    Column("can_list", Boolean, nullable=False),
    Column("can_delete", Boolean, nullable=False),
    Column("other_party_id", String(255)),
    Column("other_party_name", String(255)),
    Column("other_party_type", String(50)),
    Column("route_metadata", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

route_operations = Table(
    "route_operations", metadata,
    _id(),
    Column("route_id", String(36), ForeignKey("transport_routes.id", ondelete="CASCADE"),
           nullable=False),
    Column("operation_type", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("document_id", String(255)),  # DocEX keeps no FK here
    Column("details", JSON),
    Column("error", Text),
    _ts("created_at"),
    _ts("completed_at", nullable=True),
)

# The 26 DocEX indexes besides the keys, with DocEX's names.
_INDEXES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "doc_events": [
        ("idx_doc_events_basket_id", ("basket_id",)),
        ("idx_doc_events_document_id", ("document_id",)),
        ("idx_doc_events_event_timestamp", ("event_timestamp",)),
        ("idx_doc_events_event_type", ("event_type",)),
        ("idx_doc_events_status", ("status",)),
    ],
    "docbasket": [
        ("idx_docbasket_created_at", ("created_at DESC",)),
        ("idx_docbasket_status", ("status",)),
    ],
    "document": [
        ("idx_document_basket_created", ("basket_id", "created_at DESC")),
        ("idx_document_basket_name", ("basket_id", "name")),
        ("idx_document_basket_status", ("basket_id", "status")),
        ("idx_document_basket_type", ("basket_id", "document_type")),
        ("idx_document_basket_updated", ("basket_id", "updated_at DESC")),
        ("idx_documents_basket_id", ("basket_id",)),
        ("idx_documents_document_type", ("document_type",)),
        ("idx_documents_status", ("status",)),
    ],
    "document_metadata": [
        ("idx_document_metadata_doc_key_value", ("document_id", "key")),
        ("idx_document_metadata_document_id", ("document_id",)),
        ("idx_document_metadata_key", ("key",)),
        ("idx_document_metadata_key_value", ("key",)),
        ("idx_document_metadata_type", ("metadata_type",)),
    ],
    "file_history": [("idx_file_history_document_id", ("document_id",))],
    "operation_dependencies": [
        ("idx_operation_dependencies_depends_on", ("depends_on",)),
        ("idx_operation_dependencies_operation_id", ("operation_id",)),
    ],
    "operations": [
        ("idx_operations_document_id", ("document_id",)),
        ("idx_operations_operation_type", ("operation_type",)),
        ("idx_operations_status", ("status",)),
    ],
}

INDEX_SPECS = _INDEXES


def _add_indexes() -> None:
    for table_name, specs in _INDEXES.items():
        table = metadata.tables[table_name]
        for index_name, columns in specs:
            exprs = []
            for spec in columns:
                column_name, _, order = spec.partition(" ")
                column = table.c[column_name]
                exprs.append(column.desc() if order == "DESC" else column)
            Index(index_name, *exprs)


_add_indexes()
