"""DocEX 2.9.9's tenant schema, transcribed from shared/docex-schema.md as data.

Notation as in that document: ``vc(n)`` varchar, ``ts`` timestamp, ``NN`` not
null, ``PK``, ``UNIQUE``, ``FK <table> [CASCADE]``, ``default '<v>'``.
"""

from __future__ import annotations

from typing import Any

TABLES = {
    "docbasket": "id vc36 PK, name vc255 NN UNIQUE(uq_docbasket_name), description text, "
                 "storage_config json NN, status vc50 NN, created_at ts NN, updated_at ts NN",
    "document": "id vc36 PK, basket_id vc36 NN FK(docbasket), name vc255 NN, source vc255 NN, "
                "path vc255 NN, content_type vc100, document_type vc50 NN, content json, "
                "raw_content text, size integer, checksum vc64 NN, status vc50 NN, "
                "processing_attempts integer NN, created_at ts NN, updated_at ts NN",
    "document_metadata": "id vc36 PK, document_id vc36 NN FK(document), key vc255 NN, "
                         "value text NN, metadata_type vc50 NN, coordination_id uuid, "
                         "created_at ts NN, updated_at ts NN",
    "file_history": "id vc36 PK, document_id vc36 NN FK(document), original_path vc255, "
                    "internal_path vc255, created_at ts NN",
    "operations": "id vc36 PK, document_id vc36 NN FK(document,CASCADE), "
                  "operation_type vc100 NN, status vc50 NN, details json, error text, "
                  "created_at ts NN, completed_at ts",
    "operation_dependencies": "id vc36 PK, operation_id vc36 NN FK(operations,CASCADE), "
                              "depends_on vc36 NN FK(operations,CASCADE), created_at ts NN",
    "doc_events": "id vc36 PK, basket_id vc36 NN FK(docbasket,CASCADE), "
                  "document_id vc36 FK(document), event_type vc50 NN, event_timestamp ts NN, "
                  "data json, source vc50 NN default('docex'), status vc20 NN default('PENDING'), "
                  "error_message text, created_at ts NN, updated_at ts NN",
    "processors": "id vc36 PK, name vc255 NN UNIQUE(processors_name_key), type vc50 NN, "
                  "description text, config json NN, enabled boolean NN, created_at ts NN, "
                  "updated_at ts NN",
    "processing_operations": "id vc36 PK, document_id vc36 NN FK(document,CASCADE), "
                             "processor_id vc36 NN FK(processors,CASCADE), status vc20 NN, "
                             "input_metadata json, output_metadata json, error text, "
                             "created_at ts NN, completed_at ts",
    "transport_routes": "id vc36 PK, name vc255 NN UNIQUE(transport_routes_name_key), "
                        "purpose vc50 NN, protocol vc50 NN, config json NN, "
                        "can_upload boolean NN, can_download boolean NN, can_list boolean NN, "
                        "can_delete boolean NN, other_party_id vc255, other_party_name vc255, "
                        "other_party_type vc50, route_metadata json NN, tags json NN, "
                        "priority integer NN, enabled boolean NN, created_at ts NN, "
                        "updated_at ts NN",
    "route_operations": "id vc36 PK, route_id vc36 NN FK(transport_routes,CASCADE), "
                        "operation_type vc50 NN, status vc20 NN, document_id vc255, "
                        "details json, error text, created_at ts NN, completed_at ts",
}

INDEXES = {
    "doc_events": "idx_doc_events_basket_id (basket_id); idx_doc_events_document_id (document_id); "
                  "idx_doc_events_event_timestamp (event_timestamp); "
                  "idx_doc_events_event_type (event_type); idx_doc_events_status (status)",
    "docbasket": "idx_docbasket_created_at (created_at DESC); idx_docbasket_status (status)",
    "document": "idx_document_basket_created (basket_id, created_at DESC); "
                "idx_document_basket_name (basket_id, name); "
                "idx_document_basket_status (basket_id, status); "
                "idx_document_basket_type (basket_id, document_type); "
                "idx_document_basket_updated (basket_id, updated_at DESC); "
                "idx_documents_basket_id (basket_id); "
                "idx_documents_document_type (document_type); idx_documents_status (status)",
    "document_metadata": "idx_document_metadata_doc_key_value (document_id, key); "
                         "idx_document_metadata_document_id (document_id); "
                         "idx_document_metadata_key (key); "
                         "idx_document_metadata_key_value (key); "
                         "idx_document_metadata_type (metadata_type)",
    "file_history": "idx_file_history_document_id (document_id)",
    "operation_dependencies": "idx_operation_dependencies_depends_on (depends_on); "
                              "idx_operation_dependencies_operation_id (operation_id)",
    "operations": "idx_operations_document_id (document_id); "
                  "idx_operations_operation_type (operation_type); "
                  "idx_operations_status (status)",
}

# The "document object paths" revision (head) widens these to text.
OBJECT_PATH_COLUMNS = {("document", "source"), ("document", "path"),
                       ("file_history", "original_path"), ("file_history", "internal_path")}

_PG_TYPES = {"text": "text", "json": "json", "ts": "timestamp without time zone",
             "integer": "integer", "boolean": "boolean", "uuid": "uuid"}
_SQLITE_TYPES = {"text": "TEXT", "json": "JSON", "ts": "DATETIME", "integer": "INTEGER",
                 "boolean": "BOOLEAN", "uuid": "CHAR(32)"}


def expected_catalog(dialect: str, widened: bool = True) -> dict[str, Any]:
    """The catalog shape tests/catalog.py reads, for ``dialect``; ``widened`` = at head."""
    sqlite = dialect == "sqlite"
    result: dict[str, Any] = {}
    for table, spec in TABLES.items():
        entry: dict[str, Any] = {"columns": [], "pk": None, "unique": set(), "fks": set(),
                                 "indexes": set()}
        for column_spec in spec.split(", "):
            name, type_, *flags = column_spec.split()
            if widened and (table, name) in OBJECT_PATH_COLUMNS:
                type_ = "text"
            entry["columns"].append((name, _type(type_, sqlite), _notnull(flags),
                                     _flag_arg(flags, "default")))
            if "PK" in flags:
                entry["pk"] = (None if sqlite else f"{table}_pkey", (name,))
            unique = _flag_arg(flags, "UNIQUE")
            if unique:
                entry["unique"].add((None if sqlite else unique, (name,)))
            fk = _flag_arg(flags, "FK")
            if fk:
                ref, _, cascade = fk.partition(",")
                entry["fks"].add((None if sqlite else f"{table}_{name}_fkey", (name,), ref,
                                  "CASCADE" if cascade else "NO ACTION"))
        for index in INDEXES.get(table, "").split("; "):
            if index:
                index_name, cols = index.split(" ", 1)
                entry["indexes"].add((index_name, tuple(c.strip() for c in
                                                        cols.strip("()").split(","))))
        result[table] = entry
    return result


def _type(token: str, sqlite: bool) -> str:
    if token.startswith("vc"):
        return f"VARCHAR({token[2:]})" if sqlite else f"character varying({token[2:]})"
    return (_SQLITE_TYPES if sqlite else _PG_TYPES)[token]


def _notnull(flags: list[str]) -> bool:
    return "NN" in flags or "PK" in flags


def _flag_arg(flags: list[str], name: str) -> str | None:
    for flag in flags:
        if flag.startswith(name + "("):
            return flag[len(name) + 1:-1]
    return None
