"""The document API on both backends: DocEX's formats, isolation, threads, failures."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from docs_support import with_files
from sqlalchemy import delete, select

from docex_ops import UserContext, audit_trail
from docex_ops.compat.docex import DocEX
from docex_ops.compat.docex.tenant_dirs import files_dir
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import (
    doc_events,
    docbasket,
    document,
    document_metadata,
    file_history,
    operations,
)

UUID_HEX = r"[0-9a-f]{32}"


@pytest.fixture
def docs_manager(settings: Settings, tmp_path: Path) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    yield TenantDatabaseManager(with_files(settings, tmp_path))
    TenantDatabaseManager.reset()


def _docex(tenant_id: str, user: str = "alice") -> DocEX:
    return DocEX(user_context=UserContext(user_id=user, tenant_id=tenant_id))


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_add_writes_docex_rows_and_stores_the_file(docs_manager: TenantDatabaseManager,
                                                   tmp_path: Path) -> None:
    docex = _docex("acme")
    basket = docex.create_basket("My Invoices", description="2026")
    source = _file(tmp_path, "inv 1.txt", b"total: 42\n")
    doc = basket.add(source, metadata={"customer": "ACME", "amount": 42})

    assert basket.name == "My_Invoices"  # DocEX's sanitization
    assert doc.read() == b"total: 42\n"
    assert doc.checksum == hashlib.sha256(b"total: 42\n").hexdigest()
    assert doc.file_path.parent == basket.directory
    assert basket.directory.parent == files_dir(docs_manager.backend, "acme")
    assert doc.file_path.stat().st_mode & 0o777 == 0o640
    assert doc.get_metadata() == {"customer": "ACME", "amount": 42,
                                  "original_filename": "inv 1.txt"}

    with docs_manager.tenant_transaction("acme") as s:
        b = s.execute(select(docbasket)).one()
        d = s.execute(select(document)).one()
        metas = s.execute(select(document_metadata).order_by(document_metadata.c.key)).all()
        op = s.execute(select(operations)).one()
        # DocEX 2.9.9 writes no file_history or doc_events row for an add.
        assert s.execute(select(file_history)).all() == []
        assert s.execute(select(doc_events)).all() == []
    # DocEX json.dumps the storage config into its JSON column.
    assert json.loads(b.storage_config) == {"type": "filesystem", "path": str(basket.directory)}
    assert (b.status, b.description) == ("active", "2026")
    assert (d.name, d.path, d.status, d.document_type, d.content_type, d.size,
            d.processing_attempts) == ("inv_1.txt", f"inv_1_{doc.id[-6:]}.txt", "RECEIVED",
                                       "file", "text/plain", 10, 0)
    assert d.content == {"content": "total: 42\n"} and d.raw_content == "total: 42\n"
    assert [(m.key, m.value, m.metadata_type) for m in metas] == [
        ("amount", "42", "custom"), ("customer", '"ACME"', "custom"),
        ("original_filename", '"inv 1.txt"', "custom")]
    assert (op.operation_type, op.status, op.details) == ("ADD", "success", {
        "source": str(source), "stored_path": d.path, "document_type": "file", "size": 10,
        "checksum": doc.checksum})
    for value, prefix in [(b.id, "bas"), (d.id, "doc"), (op.id, "ope"),
                          *[(m.id, "dmt") for m in metas]]:
        assert re.fullmatch(f"{prefix}_{UUID_HEX}", value), value


def test_text_checksum_is_docexs_text_with_lf_line_ends(
        docs_manager: TenantDatabaseManager, tmp_path: Path) -> None:
    """DocEX reads a text file as text (CRLF -> LF) and hashes that; the file keeps CRLF."""
    data = b"a,b\r\n1,2\r\n"
    doc = _docex("acme").create_basket("csv").add(_file(tmp_path, "t.csv", data))
    assert doc.checksum == hashlib.sha256(b"a,b\n1,2\n").hexdigest() and doc.size == 8
    assert doc.file_path.read_bytes() == data and doc.read() == data
    with docs_manager.tenant_transaction("acme") as s:
        assert s.execute(select(document.c.raw_content)).scalar_one() == "a,b\n1,2\n"
    doc.file_path.write_bytes(b"a,b\r\n1,3\r\n")
    with pytest.raises(RuntimeError, match="sha256"):
        doc.read()


def test_same_file_again_is_docexs_duplicate(docs_manager: TenantDatabaseManager,
                                             tmp_path: Path) -> None:
    basket = _docex("acme").create_basket("invoices")
    source = _file(tmp_path, "a.txt", b"same")
    first = basket.add(source)
    assert basket.add(source, metadata={"ignored": True}) == first
    assert [p.name for p in basket.directory.iterdir()] == [first.file_path.name]
    other = basket.add(_file(tmp_path, "b.txt", b"same"))  # same bytes, other source
    assert other.id != first.id
    with docs_manager.tenant_transaction("acme") as s:
        events = s.execute(select(doc_events)).all()
        assert s.execute(select(document_metadata.c.key).where(
            document_metadata.c.document_id == first.id)).scalars().all() == [
                "original_filename"]
    assert [(e.event_type, e.document_id, e.data) for e in events] == [
        ("DUPLICATE", first.id, {"source": str(source)})]
    assert re.fullmatch(f"evt_{UUID_HEX}", events[0].id)


def test_binary_file_keeps_no_text_content(docs_manager: TenantDatabaseManager,
                                           tmp_path: Path) -> None:
    basket = _docex("acme").create_basket("scans")
    data = bytes(range(256)) * 10
    doc = basket.add(_file(tmp_path, "scan.pdf", data))
    assert doc.read() == data and doc.content_type == "application/pdf"
    with docs_manager.tenant_transaction("acme") as s:
        row = s.execute(select(document.c.content, document.c.raw_content)).one()
    assert row.content == {"content": None} and row.raw_content is None


def test_lookups_listing_and_duplicates(docs_manager: TenantDatabaseManager,
                                        tmp_path: Path) -> None:
    docex = _docex("acme")
    first = docex.create_basket("invoices")
    second = docex.create_basket("receipts")
    assert {b.id for b in docex.list_baskets()} == {first.id, second.id}
    assert docex.get_basket("invoices") == first
    assert docex.get_basket(second.id) == second
    assert docex.get_basket("missing") is None
    with pytest.raises(ValueError, match="already exists"):
        docex.create_basket("invoices")
    docs = [first.add(_file(tmp_path, f"f{i}.txt", b"x%d" % i)) for i in range(3)]
    assert {d.id for d in first.list_documents()} == {d.id for d in docs}
    assert second.list_documents() == []
    assert first.get_document(docs[1].id) == docs[1]
    assert second.get_document(docs[1].id) is None


def test_two_tenants_are_isolated(docs_manager: TenantDatabaseManager, tmp_path: Path) -> None:
    one, two = _docex("tenant1", "alice"), _docex("tenant2", "bob")
    b1, b2 = one.create_basket("invoices"), two.create_basket("invoices")
    d1 = b1.add(_file(tmp_path, "a.txt", b"tenant one"))
    d2 = b2.add(_file(tmp_path, "b.txt", b"tenant two"))
    assert [b.id for b in one.list_baskets()] == [b1.id]
    assert [b.id for b in two.list_baskets()] == [b2.id]
    assert one.get_basket(b2.id) is None and two.get_basket(b1.id) is None
    assert b1.get_document(d2.id) is None
    assert one.files_dir != two.files_dir
    assert not d2.file_path.is_relative_to(one.files_dir)
    assert (d1.read(), d2.read()) == (b"tenant one", b"tenant two")


def test_many_tenants_in_threads(docs_manager: TenantDatabaseManager, tmp_path: Path) -> None:
    tenants = [f"t{i}" for i in range(6)]
    barrier = threading.Barrier(len(tenants))

    def work(tenant_id: str) -> tuple[str, list[str], bytes]:
        docex = _docex(tenant_id)
        barrier.wait()
        basket = docex.create_basket(f"basket_{tenant_id}")
        for n in range(3):
            basket.add(_file(tmp_path, f"{tenant_id}_{n}.txt", tenant_id.encode() * (n + 1)))
        latest = basket.list_documents()
        return tenant_id, [b.name for b in docex.list_baskets()], latest[-1].read()

    with ThreadPoolExecutor(len(tenants)) as pool:
        results = list(pool.map(work, tenants))
    for tenant_id, baskets, first_doc in results:
        assert baskets == [f"basket_{tenant_id}"]
        assert first_doc.startswith(tenant_id.encode())
    assert sorted(docs_manager.list_tenant_databases()) == tenants


def test_instance_survives_closing_connections(docs_manager: TenantDatabaseManager) -> None:
    docex = _docex("acme")
    docex.create_basket("invoices")
    docs_manager.close_all_connections()
    assert docs_manager.list_tenant_databases() == []
    assert [b.name for b in docex.list_baskets()] == ["invoices"]
    assert docs_manager.list_tenant_databases() == ["acme"]


def test_missing_or_hostile_tenant_is_a_value_error(docs_manager: TenantDatabaseManager) -> None:
    for context in (None, UserContext(user_id="alice")):
        with pytest.raises(ValueError, match="tenant_id is required"):
            DocEX(user_context=context)
    for bad in ("../etc", "Acme", "a;drop"):
        with pytest.raises(ValueError, match="invalid"):
            _docex(bad)
    assert docs_manager.backend.discover() == []


def test_failed_transaction_removes_the_file_and_is_audited(
        docs_manager: TenantDatabaseManager, tmp_path: Path) -> None:
    basket = _docex("acme").create_basket("invoices")
    with docs_manager.tenant_transaction("acme") as s:
        s.execute(delete(docbasket))  # the basket vanishes under the caller: FK violation
    with pytest.raises(RuntimeError, match="tenant 'acme'"):
        basket.add(_file(tmp_path, "late.txt", b"late"))
    assert list(basket.directory.glob("*")) == []
    last = audit_trail.read_events(tmp_path / "audit.jsonl")[-1]
    assert (last.action, last.outcome, last.tenant, last.operator) == \
        ("document.add", "failed", "acme", "alice")


def test_tampered_file_is_reported(docs_manager: TenantDatabaseManager, tmp_path: Path) -> None:
    doc = _docex("acme").create_basket("invoices").add(_file(tmp_path, "a.txt", b"original"))
    doc.file_path.write_bytes(b"changed")
    with pytest.raises(RuntimeError, match="sha256"):
        doc.read()


def test_unreachable_database_is_a_runtime_error(settings: Settings, tmp_path: Path) -> None:
    import dataclasses

    if settings.db_type == "postgresql":
        broken = dataclasses.replace(settings, postgres=dataclasses.replace(
            settings.postgres, port=1))
    else:
        blocker = tmp_path / "blocker"
        blocker.write_text("not a directory")
        broken = dataclasses.replace(settings, sqlite=dataclasses.replace(
            settings.sqlite, storage_root=blocker,
            path_template=str(blocker / "tenant_{tenant_id}" / "docex.db")))
    TenantDatabaseManager.reset()
    TenantDatabaseManager(with_files(broken, tmp_path))
    try:
        with pytest.raises(RuntimeError, match="tenant 'acme'"):
            _docex("acme")
    finally:
        TenantDatabaseManager.reset()
    failed = audit_trail.read_events(tmp_path / "audit.jsonl")
    assert [(e.action, e.outcome) for e in failed] == [("tenant.provision", "failed")]


def test_tenant_files_dir_is_the_tenants_own(docs_manager: TenantDatabaseManager,
                                             tmp_path: Path) -> None:
    """SQLite: next to the tenant's file; PostgreSQL: <documents_root>/<schema>/files."""
    backend = docs_manager.backend
    if backend.kind == "sqlite":
        assert files_dir(backend, "acme") == Path(backend.location("acme")).parent / "files"
    else:
        assert files_dir(backend, "acme") == (tmp_path / "documents" / backend.location("acme")
                                             / "files")
