"""Rows in all 11 DocEX tables: JSON, unicode, NULLs, a 1 MB text, timestamps."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema import head as s


def rows_for(tag: str, big: bool = True) -> dict[str, list[dict[str, Any]]]:
    t0 = dt.datetime(2026, 3, 1, 12, 30, 45, 123456)
    t1 = dt.datetime(1999, 12, 31, 23, 59, 59)
    text = "ü€😀 \t tab, newline\n, quote ' \" backslash \\ " + tag
    bas, doc, doc2 = f"bas_{tag}", f"doc_{tag}", f"doc2_{tag}"
    ops, ops2, prc, rt = f"ope_{tag}", f"ope2_{tag}", f"prc_{tag}", f"rt_{tag}"
    return {
        "docbasket": [dict(id=bas, name=f"basket {text}", description=None,
                           storage_config={"type": "s3", "bucket": "b", "ünï": [1, 2.5, None]},
                           status="active", created_at=t0, updated_at=t1)],
        "document": [
            dict(id=doc, basket_id=bas, name="d1", source="s3://x/" + "p" * 300, path="/p",
                 content_type=None, document_type="file", content={"k": text},
                 raw_content=("x" * (1 << 20)) if big else "small", size=1 << 20,
                 checksum="c" * 64, status="new", processing_attempts=0,
                 created_at=t0, updated_at=t0),
            dict(id=doc2, basket_id=bas, name="d2", source="src", path="p2",
                 content_type="text/plain", document_type="file", content=None,
                 raw_content=None, size=None, checksum="d" * 64, status="done",
                 processing_attempts=3, created_at=t1, updated_at=t1)],
        "document_metadata": [dict(id=f"dmt_{tag}", document_id=doc, key="k", value=text,
                                   metadata_type="custom",
                                   coordination_id=uuid.UUID(int=12345678901234567890),
                                   created_at=t0, updated_at=t0)],
        "file_history": [dict(id=f"fhi_{tag}", document_id=doc, original_path=None,
                              internal_path="/in", created_at=t0)],
        "operations": [
            dict(id=ops, document_id=doc, operation_type="ingest", status="ok",
                 details={"a": [1, {"b": None}]}, error=None, created_at=t0, completed_at=None),
            dict(id=ops2, document_id=doc2, operation_type="parse", status="failed",
                 details=None, error=text, created_at=t1, completed_at=t1)],
        "operation_dependencies": [dict(id=f"odp_{tag}", operation_id=ops2, depends_on=ops,
                                        created_at=t0)],
        "doc_events": [dict(id=f"evt_{tag}", basket_id=bas, document_id=None,
                            event_type="created", event_timestamp=t0, data={"x": text},
                            error_message=None, created_at=t0, updated_at=t0)],
        "processors": [dict(id=prc, name=f"proc {tag}", type="pdf", description=None,
                            config={}, enabled=True, created_at=t0, updated_at=t0)],
        "processing_operations": [dict(id=f"pop_{tag}", processor_id=prc, document_id=doc,
                                       status="ok", input_metadata=None,
                                       output_metadata={"pages": 3}, error=None,
                                       created_at=t0, completed_at=t1)],
        "transport_routes": [dict(id=rt, name=f"route {tag}", purpose="backup",
                                  protocol="sftp", config={"host": "h"}, can_upload=True,
                                  can_download=False, can_list=True, can_delete=False,
                                  other_party_id=None, other_party_name=text,
                                  other_party_type=None, route_metadata={}, tags=["a", "ü"],
                                  priority=-1, enabled=False, created_at=t0, updated_at=t0)],
        "route_operations": [dict(id=f"ro_{tag}", route_id=rt, operation_type="upload",
                                  status="ok", document_id="doc_unlinked", details=None,
                                  error=None, created_at=t0, completed_at=None)],
    }


def fill_tenant(manager: TenantDatabaseManager, tenant_id: str, tag: str = "a",
                big: bool = True) -> int:
    """Insert one set of rows into every table; returns the number of rows."""
    data = rows_for(tag, big)
    with manager.tenant_transaction(tenant_id) as session:
        for table in s.metadata.sorted_tables:
            if data.get(table.name):
                session.execute(table.insert(), data[table.name])
    return sum(len(v) for v in data.values())


def tenant_digest(manager: TenantDatabaseManager, tenant_id: str) -> dict[str, tuple[int, str]]:
    """(rows, checksum) per DocEX table of a live tenant, as a manifest records them."""
    from docex_ops.backup.archivers import make_archiver

    archiver = make_archiver(manager.backend)
    try:
        return {t: (d.rows, d.checksum) for t, d in archiver.digest_tenant(tenant_id).items()}
    finally:
        archiver.dispose()
