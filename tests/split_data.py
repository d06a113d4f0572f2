"""A generated single-tenant DocEX database: four baskets, all 11 tables, planted problems.

Baskets ``b1``/``b2`` map to acme, ``b3`` to globex, ``b4`` is unmapped (planted).
Planted edges: an operation dependency of b1 on an operation in b3, a doc_event
of b2 naming a document of b3. ``expected`` says which ids each tenant must get
when the split runs with ``--unmapped skip --cross-tenant-edges drop``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from docex_ops.schema import head as s
from docex_ops.schema.ddl import head_ddl
from docex_ops.schema.names import TABLE_NAMES

T0 = dt.datetime(2026, 3, 1, 12, 30, 45, 123456)
MAPPING = "baskets:\n  basket one: acme\n  bas_b2: acme\n  bas_b3: globex\n"


def rows() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLE_NAMES}
    for b in ("b1", "b2", "b3", "b4"):
        data["docbasket"].append(dict(id=f"bas_{b}", name="basket one" if b == "b1" else
                                      f"basket {b} ü", description=None,
                                      storage_config={"type": "fs", "k": [1, None]},
                                      status="active", created_at=T0, updated_at=T0))
        for n in range(3):
            doc = f"doc_{b}_{n}"
            data["document"].append(dict(
                id=doc, basket_id=f"bas_{b}", name=f"d{n}", source="s3://x/" + "p" * 20,
                path=f"/p/{n}", content_type=None, document_type="file",
                content={"n": n, "t": "ü€"}, raw_content="raw 'q' \\ " + doc, size=n,
                checksum="c" * 64, status="new", processing_attempts=n, created_at=T0,
                updated_at=T0 + dt.timedelta(seconds=n)))
            data["document_metadata"].append(dict(
                id=f"dmt_{doc}", document_id=doc, key="k", value="v", metadata_type="custom",
                coordination_id=uuid.UUID(int=n + 1), created_at=T0, updated_at=T0))
            data["file_history"].append(dict(id=f"fhi_{doc}", document_id=doc,
                                             original_path=None, internal_path="/in",
                                             created_at=T0))
            data["operations"].append(dict(id=f"ope_{doc}", document_id=doc,
                                           operation_type="ingest", status="ok",
                                           details={"a": n}, error=None, created_at=T0,
                                           completed_at=None))
            data["processing_operations"].append(dict(
                id=f"pop_{doc}", document_id=doc, processor_id="prc_1", status="ok",
                input_metadata=None, output_metadata={"pages": n}, error=None,
                created_at=T0, completed_at=T0))
            data["doc_events"].append(dict(id=f"evt_{doc}", basket_id=f"bas_{b}",
                                           document_id=doc, event_type="created",
                                           event_timestamp=T0, data=None, error_message=None,
                                           created_at=T0, updated_at=T0))
            data["route_operations"].append(dict(id=f"ro_{doc}", route_id="rt_1",
                                                 operation_type="upload", status="ok",
                                                 document_id=doc, details=None, error=None,
                                                 created_at=T0, completed_at=None))
        data["operation_dependencies"].append(dict(id=f"odp_{b}", operation_id=f"ope_doc_{b}_1",
                                                   depends_on=f"ope_doc_{b}_0", created_at=T0))
    # planted: cross-tenant edges
    data["operation_dependencies"].append(dict(id="odp_cross", operation_id="ope_doc_b1_2",
                                               depends_on="ope_doc_b3_0", created_at=T0))
    data["doc_events"].append(dict(id="evt_cross", basket_id="bas_b2", document_id="doc_b3_1",
                                   event_type="moved", event_timestamp=T0, data={"x": 1},
                                   error_message=None, created_at=T0, updated_at=T0))
    data["doc_events"].append(dict(id="evt_nodoc", basket_id="bas_b3", document_id=None,
                                   event_type="created", event_timestamp=T0, data=None,
                                   error_message=None, created_at=T0, updated_at=T0))
    for i in (1, 2):
        data["processors"].append(dict(id=f"prc_{i}", name=f"proc {i}", type="pdf",
                                       description=None, config={}, enabled=i == 1,
                                       created_at=T0, updated_at=T0))
    data["transport_routes"].append(dict(
        id="rt_1", name="route", purpose="backup", protocol="sftp", config={"h": 1},
        can_upload=True, can_download=False, can_list=True, can_delete=False,
        other_party_id=None, other_party_name="ü", other_party_type=None, route_metadata={},
        tags=["a"], priority=-1, enabled=True, created_at=T0, updated_at=T0))
    for rid, doc in (("ro_nodoc", None), ("ro_gone", "doc_deleted_long_ago")):
        data["route_operations"].append(dict(id=rid, route_id="rt_1", operation_type="list",
                                             status="ok", document_id=doc, details=None,
                                             error=None, created_at=T0, completed_at=None))
    return data


def expected() -> dict[str, dict[str, set[str]]]:
    """tenant -> table -> ids, for --unmapped skip --cross-tenant-edges drop."""
    data = rows()
    baskets = {"acme": {"bas_b1", "bas_b2"}, "globex": {"bas_b3"}}
    result: dict[str, dict[str, set[str]]] = {}
    for tenant, owned in baskets.items():
        docs = {d["id"] for d in data["document"] if d["basket_id"] in owned}
        ops = {o["id"] for o in data["operations"] if o["document_id"] in docs}
        mine: dict[str, set[str]] = {
            "docbasket": set(owned), "document": docs,
            "processors": {"prc_1", "prc_2"}, "transport_routes": {"rt_1"},
            "operation_dependencies": {r["id"] for r in data["operation_dependencies"]
                                       if r["operation_id"] in ops and r["depends_on"] in ops},
            "doc_events": {r["id"] for r in data["doc_events"] if r["basket_id"] in owned
                           and (r["document_id"] is None or r["document_id"] in docs)},
            "route_operations": {r["id"] for r in data["route_operations"]
                                 if r["document_id"] in docs or r["id"] in ("ro_nodoc",
                                                                             "ro_gone")},
        }
        for table in ("document_metadata", "file_history", "operations",
                      "processing_operations"):
            mine[table] = {r["id"] for r in data[table] if r["document_id"] in docs}
        result[tenant] = mine
    return result


def fill(engine_url: str, connect_args: dict[str, Any] | None = None) -> None:
    engine = create_engine(engine_url, connect_args=connect_args or {})
    data = rows()
    with engine.begin() as conn:
        for table in s.metadata.sorted_tables:
            if data[table.name]:
                conn.execute(insert(table), data[table.name])
    engine.dispose()


def make_pg_source(pg_conn: Any, database: str, schema: str) -> str:
    """A single-tenant DocEX schema (unversioned, at head); returns its URL."""
    with pg_conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
        cur.execute(f'SET search_path TO "{schema}"')
        cur.execute(head_ddl("postgresql"))
        cur.execute("RESET search_path")
    from conftest import PG_HOST, PG_PORT, PG_USER
    url = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
    fill(url, {"options": f"-c search_path={schema}"})
    return url


def make_sqlite_source(path: Path) -> Path:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.executescript(head_ddl("sqlite"))
    conn.close()
    fill(f"sqlite:///{path}")
    return path
