"""The DocEX tables as they were before 2.9, frozen: revision 0001 creates them,
and later batch steps rebuild SQLite tables from them (``copy_from``) instead of
reflecting, so their SQL can be rendered offline and DESC indexes survive.

Never edit these definitions: they are history. The current model is schema.py.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

VC36 = sa.String(36)


def _id() -> sa.Column[str]:
    return sa.Column("id", VC36, primary_key=True)


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def pre_2_9_items(table: str) -> list[sa.schema.SchemaItem]:
    """Fresh Column and constraint objects of one table (new objects on every call)."""
    return [_id(), *_ITEMS[table]()]


_ITEMS: dict[str, Callable[[], list[sa.schema.SchemaItem]]] = {
    "docbasket": lambda: [
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("storage_config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(50), nullable=False),
        _ts("created_at"), _ts("updated_at"),
        sa.UniqueConstraint("name", name="uq_docbasket_name"),
    ],
    "document": lambda: [
        sa.Column("basket_id", VC36, sa.ForeignKey("docbasket.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100)),
        sa.Column("document_type", sa.String(50), nullable=False),
        sa.Column("content", sa.JSON()),
        sa.Column("raw_content", sa.Text()),
        sa.Column("size", sa.Integer()),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("processing_attempts", sa.Integer(), nullable=False),
        _ts("created_at"), _ts("updated_at"),
    ],
    "document_metadata": lambda: [
        sa.Column("document_id", VC36, sa.ForeignKey("document.id"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("metadata_type", sa.String(50), nullable=False),
        sa.Column("profile", sa.String(64)),
        sa.Column("group_id", sa.Uuid()),
        _ts("created_at"), _ts("updated_at"),
    ],
    "file_history": lambda: [
        sa.Column("document_id", VC36, sa.ForeignKey("document.id"), nullable=False),
        sa.Column("original_path", sa.String(255)),
        sa.Column("internal_path", sa.String(255)),
        _ts("created_at"),
    ],
    "operations": lambda: [
        sa.Column("document_id", VC36, sa.ForeignKey("document.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("operation_type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("details", sa.JSON()),
        sa.Column("error", sa.Text()),
        _ts("created_at"), _ts("completed_at", nullable=True),
    ],
    "operation_dependencies": lambda: [
        sa.Column("operation_id", VC36, sa.ForeignKey("operations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("depends_on", VC36, sa.ForeignKey("operations.id", ondelete="CASCADE"),
                  nullable=False),
        _ts("created_at"),
    ],
    "doc_events": lambda: [
        sa.Column("basket_id", VC36, sa.ForeignKey("docbasket.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("document_id", VC36, sa.ForeignKey("document.id")),
        sa.Column("event_type", sa.String(50), nullable=False),
        _ts("event_timestamp"),
        sa.Column("data", sa.JSON()),
        sa.Column("source", sa.String(50), nullable=False, server_default=sa.text("'docex'")),
        sa.Column("status", sa.String(20), nullable=False, server_default=sa.text("'PENDING'")),
        sa.Column("error_message", sa.Text()),
        _ts("created_at"), _ts("updated_at"),
    ],
    "processors": lambda: [
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("created_at"), _ts("updated_at"),
    ],
    "processing_operations": lambda: [
        sa.Column("document_id", VC36, sa.ForeignKey("document.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("processor_id", VC36, sa.ForeignKey("processors.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("input_metadata", sa.JSON()),
        sa.Column("output_metadata", sa.JSON()),
        sa.Column("error", sa.Text()),
        _ts("created_at"), _ts("completed_at", nullable=True),
    ],
    "transport_routes": lambda: [
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("purpose", sa.String(50), nullable=False),
        sa.Column("protocol", sa.String(50), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        *(sa.Column(f"can_{verb}", sa.Boolean(), nullable=False)
          for verb in ("upload", "download", "list", "delete")),
        sa.Column("other_party_id", sa.String(255)),
        sa.Column("other_party_name", sa.String(255)),
        sa.Column("other_party_type", sa.String(50)),
        sa.Column("route_metadata", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("created_at"), _ts("updated_at"),
    ],
    "route_operations": lambda: [
        sa.Column("route_id", VC36, sa.ForeignKey("transport_routes.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("operation_type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("document_id", sa.String(255)),
        sa.Column("details", sa.JSON()),
        sa.Column("error", sa.Text()),
        _ts("created_at"), _ts("completed_at", nullable=True),
    ],
}

TABLES = tuple(_ITEMS)  # in creation order: referenced tables first

# (table, index name, columns); "col DESC" marks a descending column.
INDEXES = [
    ("doc_events", "idx_doc_events_basket_id", ["basket_id"]),
    ("doc_events", "idx_doc_events_document_id", ["document_id"]),
    ("doc_events", "idx_doc_events_event_timestamp", ["event_timestamp"]),
    ("doc_events", "idx_doc_events_event_type", ["event_type"]),
    ("doc_events", "idx_doc_events_status", ["status"]),
    ("docbasket", "idx_docbasket_created_at", ["created_at DESC"]),
    ("docbasket", "idx_docbasket_status", ["status"]),
    ("document", "idx_document_basket_created", ["basket_id", "created_at DESC"]),
    ("document", "idx_document_basket_name", ["basket_id", "name"]),
    ("document", "idx_document_basket_status", ["basket_id", "status"]),
    ("document", "idx_document_basket_type", ["basket_id", "document_type"]),
    ("document", "idx_document_basket_updated", ["basket_id", "updated_at DESC"]),
    ("document", "idx_documents_basket_id", ["basket_id"]),
    ("document", "idx_documents_document_type", ["document_type"]),
    ("document", "idx_documents_status", ["status"]),
    ("document_metadata", "idx_document_metadata_doc_key_value", ["document_id", "key"]),
    ("document_metadata", "idx_document_metadata_document_id", ["document_id"]),
    ("document_metadata", "idx_document_metadata_key", ["key"]),
    ("document_metadata", "idx_document_metadata_key_value", ["key"]),
    ("document_metadata", "idx_document_metadata_type", ["metadata_type"]),
    ("file_history", "idx_file_history_document_id", ["document_id"]),
    ("operation_dependencies", "idx_operation_dependencies_depends_on", ["depends_on"]),
    ("operation_dependencies", "idx_operation_dependencies_operation_id", ["operation_id"]),
    ("operations", "idx_operations_document_id", ["document_id"]),
    ("operations", "idx_operations_operation_type", ["operation_type"]),
    ("operations", "idx_operations_status", ["status"]),
]



def pre_2_9_table(name: str) -> sa.Table:
    """One table as it was before 2.9, with its indexes, in a MetaData of its own."""
    table = sa.Table(name, sa.MetaData(), *pre_2_9_items(name))
    for table_name, index, columns in INDEXES:
        if table_name == name:
            sa.Index(index, *[table.c[c.split()[0]].desc() if c.endswith(" DESC")
                              else table.c[c] for c in columns])
    return table
