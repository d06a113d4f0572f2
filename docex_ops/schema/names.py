"""The names of DocEX's 11 tables, importable without SQLAlchemy (discovery and the
status path need the names, not the MetaData that head.py builds)."""

TABLE_NAMES = (
    "docbasket", "document", "document_metadata", "file_history", "operations",
    "operation_dependencies", "doc_events", "processors", "processing_operations",
    "transport_routes", "route_operations",
)
