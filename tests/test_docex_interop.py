"""The two compatibility promises of docex-schema.md, proved with real DocEX 2.9.9.

1. DocEX uses a tenant that docex-ops provisioned and filled through
   ``docex_ops.DocEX``, and docex-ops reads back what DocEX adds to it.
2. docex-ops adopts a tenant DocEX made (``migrate adopt`` / ``upgrade``), rows intact,
   and DocEX still reads it afterwards.
3. DocEX's catalog equals docex-ops' catalog at 0002_docex_2_9_9, names included.

DocEX runs in subprocesses (tests/docex_step.py): it is a process singleton that
refuses to switch tenants. Both sides share one configuration file, the one
``DocEX.setup`` writes, and one working directory, where DocEX resolves its relative
paths (SQLite: the default ``storage/tenant_{tenant_id}/docex.db``).

On PostgreSQL, DocEX 2.9.9 cannot connect as shipped: it builds a bare
``postgresql://`` URL, which SQLAlchemy 2.1 gives to psycopg 3, absent here (DocEX's
own ``postgres`` extra installs psycopg2). test_docex_2_9_9_alone_cannot_reach_postgresql
shows that; the other PostgreSQL runs name psycopg2 as the default driver inside the
DocEX process (see docex_step.use_psycopg2_for_bare_postgresql_urls), DocEX untouched.

Each test runs on SQLite, plain PostgreSQL and a Citus coordinator (``citus``: the same
DocEX configuration pointed at the coordinator, ``topology: citus`` for docex-ops; DocEX
talks to the coordinator as to any PostgreSQL server).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from citus_support import CitusTestCluster
from conftest import PG_HOST, PG_PORT, PG_USER
from migration_helpers import HEAD, cli_json
from sqlalchemy import select, text

from docex_ops import UserContext
from docex_ops.compat.docex import DocEX, Document
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, StepOptions, TenantStep, migrate_tenant
from docex_ops.schema.head import (
    TABLE_NAMES,
    doc_events,
    document_metadata,
    file_history,
    operations,
)

STEP_SCRIPT = Path(__file__).with_name("docex_step.py")
DOCEX_2_9_9 = "0002_docex_2_9_9"


@dataclass
class Interop:
    """One shared DocEX configuration and working directory; DocEX runs out of process."""

    kind: str  # the database type DocEX is configured with: postgresql | sqlite
    work: Path
    home: Path
    config: Path
    manager: TenantDatabaseManager
    citus: bool = False

    def docex(self, tenant: str | None, *steps: dict[str, Any],
              psycopg2: bool | None = None) -> list[Any]:
        """Run DocEX for ``tenant`` through ``steps``; one result per step."""
        use_psycopg2 = self.kind == "postgresql" if psycopg2 is None else psycopg2
        script, result = self.work / "step.json", self.work / "result.json"
        script.write_text(json.dumps({"tenant": tenant, "psycopg2": use_psycopg2,
                                      "steps": list(steps)}))
        result.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCEX_")}
        done = subprocess.run([sys.executable, str(STEP_SCRIPT), str(script), str(result)],
                              cwd=self.work, env={**env, "HOME": str(self.home)},
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise DocEXFailed(done.stderr.strip().splitlines()[-1] if done.stderr else "",
                              done.stderr)
        loaded: list[Any] = json.loads(result.read_text())
        return loaded


class DocEXFailed(AssertionError):
    def __init__(self, last_line: str, stderr: str) -> None:
        super().__init__(f"DocEX failed: {last_line}\n{stderr[-3000:]}")
        self.last_line = last_line


def _docex_config(kind: str, pg_database: str | None, schema_prefix: str,
                  citus: CitusTestCluster | None = None) -> dict[str, Any]:
    """What a DocEX user passes to DocEX.setup for database-level tenancy."""
    if kind == "postgresql":
        database: dict[str, Any] = {"type": "postgresql", "postgres": {
            "host": PG_HOST, "port": PG_PORT, "user": PG_USER, "password": "",
            "database": pg_database, "schema_template": schema_prefix + "{tenant_id}",
            # docex-ops' own key (DocEX ignores it): keeps this test's control data apart.
            "control_schema": "ctl_" + schema_prefix.rstrip("_")}}
        if citus is not None:  # the coordinator; docex-ops' own key for the topology
            database["postgres"].update(host=citus.coordinator.host,
                                        port=citus.coordinator.port, database="docex",
                                        topology="citus")
    else:
        database = {"type": "sqlite", "sqlite": {
            "path": "docex.db", "path_template": "storage/tenant_{tenant_id}/docex.db"}}
    return {"database": database, "logging": {"level": "WARNING"},
            "security": {"multi_tenancy_model": "database_level",
                         "tenant_database_routing": True}}


@pytest.fixture(params=["postgresql", "sqlite", "citus"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def interop(kind: str, tmp_path: Path, schema_prefix: str, monkeypatch: pytest.MonkeyPatch,
            request: pytest.FixtureRequest) -> Iterator[Interop]:
    citus = request.getfixturevalue("citus_cluster") if kind == "citus" else None
    kind = "postgresql" if citus is not None else kind
    pg_database = (request.getfixturevalue("pg_database")
                   if kind == "postgresql" and citus is None else None)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)  # docex-ops resolves the file's relative paths here, as DocEX does
    config = home / ".docex" / "config.yaml"
    setup = Interop(kind, work, home, config, manager=None,  # type: ignore[arg-type]
                    citus=citus is not None)
    setup.docex(None, {"op": "setup",
                       "config": _docex_config(kind, pg_database, schema_prefix, citus)})
    assert config.is_file()
    # docex-ops finds DocEX's file by $DOCEX_CONFIG, also after a CLI call has reset
    # the process' manager.
    monkeypatch.setenv("DOCEX_CONFIG", str(config))
    TenantDatabaseManager.reset()
    setup.manager = TenantDatabaseManager()
    assert setup.manager.settings.db_type == kind
    try:
        yield setup
    finally:
        TenantDatabaseManager.reset()


def _source(interop: Interop, name: str, data: bytes) -> Path:
    path = interop.work / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def _assert_same_document(ours: Document, theirs: dict[str, Any]) -> None:
    assert (theirs["id"], theirs["name"], theirs["path"], theirs["content_type"],
            theirs["document_type"], theirs["size"], theirs["checksum"], theirs["status"]) == \
        (ours.id, ours.name, ours.path, ours.content_type, ours.document_type, ours.size,
         ours.checksum, ours.status)
    assert theirs["metadata"] == ours.get_metadata()
    assert base64.b64decode(theirs["content"]) == ours.read()
    assert theirs["found_by_id"]


def _footprint(manager: TenantDatabaseManager, tenant: str, document_id: str) -> dict[str, Any]:
    """The rows one add leaves besides the document row, in a comparable shape."""
    with manager.tenant_transaction(tenant) as s:
        ops = s.execute(select(operations).where(operations.c.document_id == document_id)).all()
        return {
            "operations": [(o.operation_type, o.status, sorted(o.details)) for o in ops],
            "metadata_types": set(s.execute(select(document_metadata.c.metadata_type).where(
                document_metadata.c.document_id == document_id)).scalars()),
            "file_history": s.execute(select(file_history.c.id).where(
                file_history.c.document_id == document_id)).all(),
            "events": sorted(s.execute(select(doc_events.c.event_type).where(
                doc_events.c.document_id == document_id)).scalars()),
        }


def test_docex_uses_a_tenant_docex_ops_filled(interop: Interop) -> None:
    ours = DocEX(user_context=UserContext(user_id="ops", tenant_id="acme"))
    basket = ours.create_basket("Invoices 2026", description="filled by docex-ops")
    crlf = _source(interop, "totals.csv", b"item,amount\r\nwidget,42\r\n")
    added = [
        basket.add(_source(interop, "note.txt", b"total: 42\nthanks\n"),
                   metadata={"customer": "ACME", "amount": 42, "tags": ["a", "b"],
                             "extra": {"k": 1}, "missing": None}),
        basket.add(crlf, metadata={"period": "2026-01"}),
        basket.add(_source(interop, "scan.pdf", bytes(range(256)) * 8)),
    ]
    from_docex = _source(interop, "reply.txt", b"from DocEX\r\nline 2\n")

    dump, duplicate, new = interop.docex(
        "acme", {"op": "dump"},
        {"op": "add", "basket": basket.name, "path": str(crlf)},
        {"op": "add", "basket": basket.name, "path": str(from_docex),
         "metadata": {"by": "docex", "n": 7}})

    # Everything docex-ops wrote, DocEX sees, equal.
    assert [(b["id"], b["name"], b["description"]) for b in dump] == \
        [(basket.id, "Invoices_2026", "filled by docex-ops")]
    assert dump[0]["found_by_name"]
    theirs = {d["id"]: d for d in dump[0]["documents"]}
    assert sorted(theirs) == sorted(d.id for d in added)
    for doc in added:
        _assert_same_document(doc, theirs[doc.id])
    # DocEX recognises docex-ops' document as the same file (its checksum and source).
    assert duplicate["id"] == added[1].id
    assert _footprint(interop.manager, "acme", added[1].id)["events"] == ["DUPLICATE"]

    # What DocEX added, docex-ops reads back, equal.
    again = ours.get_basket(basket.id)
    assert again is not None
    mine = again.get_document(new["id"])
    assert mine is not None
    _assert_same_document(mine, new)
    assert mine.read() == b"from DocEX\r\nline 2\n"
    assert mine.get_metadata() == {"by": "docex", "n": 7, "original_filename": "reply.txt"}
    assert {d.id for d in again.list_documents()} == {*theirs, new["id"]}
    # ... leaving the same rows around the document as docex-ops' own add,
    assert _footprint(interop.manager, "acme", new["id"]) == \
        _footprint(interop.manager, "acme", added[0].id)
    # ... and docex-ops, too, knows DocEX's document when the same file comes again.
    assert again.add(from_docex).id == new["id"]
    if interop.citus:  # all of it in the tenant's distributed schema, on one worker
        placed = interop.manager.topology.citus_cluster("test").placements(["acme"])["acme"]
        assert placed is not None and placed.distributed and placed.node
        assert interop.manager.topology.problems() == []


def _rows(manager: TenantDatabaseManager, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
    with manager.backend.tenant_connection(tenant) as conn:
        return {t: sorted(tuple(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {t}")))
                for t in TABLE_NAMES}


def test_docex_ops_adopts_a_tenant_docex_made(interop: Interop) -> None:
    source = _source(interop, "contract.txt", b"signed\r\nby both\n")
    made, added, before = interop.docex(
        "made", {"op": "create_basket", "name": "contracts", "description": "by DocEX"},
        {"op": "add", "basket": "contracts", "path": str(source), "metadata": {"v": 1}},
        {"op": "dump"})
    rows = _rows(interop.manager, "made")
    assert len(rows["document"]) == 1 and len(rows["docbasket"]) == 1
    if interop.citus:
        # DocEX made a plain schema on the coordinator: reported, then distributed.
        assert [p.tenant_id for p in interop.manager.topology.problems()] == ["made"]
        code, distributed = cli_json(interop.config, "tenants", "distribute", "made")
        assert code == 0, distributed
        placed = interop.manager.topology.citus_cluster("test").placements(["made"])["made"]
        assert placed is not None and placed.distributed and placed.node
        assert _rows(interop.manager, "made") == rows

    code, status = cli_json(interop.config, "migrate", "status")
    assert code == 0
    assert [(t["tenant"], t["state"]) for t in status["tenants"]] == [("made", "unversioned")]
    code, adopted = cli_json(interop.config, "migrate", "adopt")
    assert code == 0
    assert [(r["tenant"], r["status"], r["matches"]) for r in adopted["tenants"]] == \
        [("made", "adopted", [DOCEX_2_9_9])]
    assert interop.manager.backend.read_revisions(["made"]) == {"made": DOCEX_2_9_9}
    code, report = cli_json(interop.config, "migrate", "upgrade")
    assert code == 0, report
    assert interop.manager.backend.read_revisions(["made"]) == {"made": HEAD}
    assert _rows(interop.manager, "made") == rows

    # DocEX still reads its tenant, unchanged; docex-ops reads DocEX's document too.
    (after,) = interop.docex("made", {"op": "dump"})
    assert after == before
    basket = DocEX(user_context=UserContext(user_id="ops", tenant_id="made")).get_basket(
        made["id"])
    assert basket is not None
    doc = basket.get_document(added["id"])
    assert doc is not None
    _assert_same_document(doc, added)


def test_docex_catalog_equals_docex_ops_at_2_9_9(interop: Interop) -> None:
    assert interop.docex("bydocex", {"op": "dump"}) == [[]]
    backend = interop.manager.backend
    backend.create("byops", "")
    step = TenantStep("byops", backend.location("byops"), None, DOCEX_2_9_9, "upgrade")
    assert migrate_tenant(backend, MigrationScripts(), step, StepOptions()).ok
    theirs, ours = backend.catalog("bydocex"), backend.catalog("byops")
    assert sorted(theirs) == sorted(TABLE_NAMES)
    # docex-schema.md says 15 foreign keys; DocEX itself makes the 11 its FK columns list.
    assert sum(len(t["fks"]) for t in theirs.values()) == 11
    assert sum(len(t["indexes"]) for t in theirs.values()) == 26
    for table in TABLE_NAMES:
        assert theirs[table] == ours[table], table


def test_docex_2_9_9_alone_cannot_reach_postgresql(interop: Interop) -> None:
    """Why the PostgreSQL runs name psycopg2 for DocEX (see the module docstring)."""
    if interop.kind != "postgresql":
        assert interop.docex("plain", {"op": "dump"}, psycopg2=False) == [[]]
        return
    with pytest.raises(DocEXFailed) as failed:
        interop.docex("plain", {"op": "dump"}, psycopg2=False)
    assert "No module named 'psycopg'" in failed.value.last_line
