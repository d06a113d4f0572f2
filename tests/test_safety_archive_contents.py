"""What an archive or a split's source may hold, judged before anything is made or read
(issue 13, deliverable 4): the table of contents, the row stream, split sources."""

from __future__ import annotations

import io
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from migration_helpers import cli_json
from split_data import MAPPING, expected, make_pg_source, make_sqlite_source

from docex_ops.backends import make_backend
from docex_ops.backup.archive import ArchiveRefused, RestoreSpec
from docex_ops.backup.pg_load import load_rows
from docex_ops.backup.pg_toc import check_toc
from docex_ops.config.settings import Settings
from docex_ops.schema.names import TABLE_NAMES

S = "tenant_a"
SPEC = RestoreSpec(Path("/bk/a.pgdump"), S, "0003_object_paths", "")
OK_LINES = [
    f"6; 2615 1 SCHEMA - {S} postgres",
    f"3354; 0 0 ACL - SCHEMA {S} postgres",
    f"215; 1259 2 TABLE {S} document postgres",
    f"216; 1259 3 TABLE {S} alembic_version postgres",
    f"3355; 0 0 COMMENT {S} TABLE document postgres",
    f"3346; 0 2 TABLE DATA {S} document postgres",
    f"3347; 0 3 TABLE DATA {S} alembic_version postgres",
    f"3203; 2606 4 CONSTRAINT {S} document document_pkey postgres",
    f"3204; 2606 5 FK CONSTRAINT {S} document document_basket_id_fkey postgres",
    f"3201; 1259 6 INDEX {S} idx_documents_status postgres",
    f"3360; 0 0 ACL {S} TABLE document postgres",
]


def test_toc_of_a_docex_tenant_loads_only_its_rows() -> None:
    contents = check_toc("\n".join([";", "; Archive created at ...", *OK_LINES]), SPEC)
    assert contents.docex_tables == ("document",)
    assert contents.extra_tables == ()


@pytest.mark.parametrize("line, named", [
    ("900; 1255 9 FUNCTION tenant_a f() postgres", "function"),
    ("900; 1255 9 PROCEDURE tenant_a p() postgres", "procedure"),
    ("900; 1255 9 AGGREGATE tenant_a agg(integer) postgres", "aggregate"),
    ("900; 1259 9 VIEW tenant_a v postgres", "view"),
    ("900; 1259 9 MATERIALIZED VIEW tenant_a mv postgres", "materialized view"),
    ("900; 2620 9 TRIGGER tenant_a document t postgres", "trigger"),
    ("900; 2618 9 RULE tenant_a document r postgres", "rule"),
    ("900; 3256 9 POLICY tenant_a document p postgres", "policy"),
    ("900; 0 9 ROW SECURITY tenant_a document postgres", "row security"),
    ("900; 1247 9 TYPE tenant_a t postgres", "type"),
    ("900; 1247 9 DOMAIN tenant_a d postgres", "domain"),
    ("900; 3079 9 EXTENSION - hstore ", "outside the tenant's schema"),
    ("900; 3466 9 EVENT TRIGGER - e postgres", "outside the tenant's schema"),
    ("900; 6104 9 PUBLICATION - p postgres", "outside the tenant's schema"),
    ("900; 1417 9 FOREIGN SERVER - s postgres", "outside the tenant's schema"),
    ("900; 2613 9 BLOB - 12345 postgres", "outside the tenant's schema"),
    ("900; 826 9 DEFAULT ACL tenant_a DEFAULT PRIVILEGES FOR TABLES postgres",
     "default acl"),
    ("900; 0 0 ACL tenant_a FUNCTION f() postgres", "acl on an object"),
    ("900; 0 0 ACL - DATABASE docex postgres", "outside the tenant's schema"),
    ("900; 1259 9 TABLE public planted postgres", "outside the tenant's schema"),
    ("900; 1259 9 TABLE tenant_b planted postgres", "outside the tenant's schema"),
    ("900; 0 9 TABLE DATA tenant_a document postgres", "second copy"),
    ("900; 1259 9 TABLE tenant_a invoices postgres", "--allow-extra-objects"),
    ("900; 1259 9 SEQUENCE tenant_a s postgres", "--allow-extra-objects"),
    ("900; 1259 9 NO SUCH KIND tenant_a x postgres", "cannot be read"),
    ("900; 1259 9 TABLE tenant_a my table postgres", "cannot be read"),
])
def test_toc_entries_docex_has_not_are_refused_by_name(line: str, named: str) -> None:
    with pytest.raises(ArchiveRefused) as refused:
        check_toc("\n".join([*OK_LINES, line]), SPEC)
    message = str(refused.value)
    assert named in message and "entry" in message and "\n" not in message


def test_toc_extra_tables_pass_only_with_the_flag() -> None:
    extra = [f"900; 1259 9 TABLE {S} invoices postgres",
             f"901; 0 9 TABLE DATA {S} invoices postgres",
             f"902; 2606 9 CHECK CONSTRAINT {S} invoices positive postgres",
             f"903; 1259 9 SEQUENCE {S} invoices_id_seq postgres",
             f"904; 0 0 SEQUENCE OWNED BY {S} invoices_id_seq postgres"]
    allowed = RestoreSpec(SPEC.archive, S, SPEC.revision, "", allow_extra=True)
    contents = check_toc("\n".join([*OK_LINES, *extra]), allowed)
    assert contents.extra_tables == ("invoices",)
    orphan = f"905; 2606 9 CONSTRAINT {S} ghost ghost_pkey postgres"
    with pytest.raises(ArchiveRefused, match="ghost"):
        check_toc("\n".join([*OK_LINES, *extra, orphan]), allowed)


def test_toc_of_a_batch_archive_may_name_its_other_tenants_only() -> None:
    batch = RestoreSpec(SPEC.archive, S, SPEC.revision, "", batch_locations=frozenset(
        {"tenant_b"}))
    other = ["7; 2615 1 SCHEMA - tenant_b postgres",
             "500; 1255 9 FUNCTION tenant_b f() postgres"]  # never read: not judged
    assert check_toc("\n".join([*OK_LINES, *other]), batch).docex_tables == ("document",)
    with pytest.raises(ArchiveRefused, match="tenant_c"):
        check_toc("\n".join([*OK_LINES, "8; 2615 1 SCHEMA - tenant_c postgres"]), batch)


# -- the row stream: nothing of the archive's SQL runs -----------------------------------


def _scratch_cursor(pg_database: str) -> Any:
    """A cursor in an open transaction holding a fresh scratch table t (id, v), made in
    that transaction (as a restore makes its tables); rolled back by the caller."""
    from conftest import pg_admin_connect

    conn = pg_admin_connect(pg_database)
    conn.autocommit = False
    scratch = f"docex$test_{uuid.uuid4().hex[:8]}"
    cur = conn.cursor()
    cur.execute(f'CREATE SCHEMA "{scratch}"; CREATE TABLE "{scratch}".t (id text, v text)')
    return cur, scratch


@pytest.mark.parametrize("stream, named", [
    (b"SELECT pg_sleep(1);\n", "unexpected SQL"),
    (b"\\! touch /tmp/docex-pwned\n", "unexpected SQL"),
    (b"SET search_path = public;\n", "unexpected SQL"),
    (b"COPY tenant_b.t (id, v) FROM stdin;\nx\t1\n\\.\n", "not expected"),
    (b"COPY tenant_a.other (id, v) FROM stdin;\nx\t1\n\\.\n", "not expected"),
    (b"COPY tenant_a.t (id) FROM stdin;\nx\n\\.\n", "columns"),
    (b"COPY tenant_a.t (id, v) FROM PROGRAM 'id';\n", "unexpected SQL"),
    (b"COPY tenant_a.t (id, v) FROM stdin;\nx\t1\n", "ends inside the rows"),
    (b"COPY tenant_a.t (id, v) FROM stdin;\nx\t1\n\\.\r\nSELECT 1;\n", "instead of"),
    (b"COPY tenant_a.t (id, v) FROM stdin;\nx\t1\n\\.\nCOPY tenant_a.t (id, v) FROM stdin;\n"
     b"y\t2\n\\.\n", "not expected"),
])
def test_row_stream_refuses_anything_but_rows(pg_database: str, stream: bytes,
                                              named: str) -> None:
    cur, scratch = _scratch_cursor(pg_database)
    try:
        with pytest.raises(ArchiveRefused) as refused:
            load_rows(cur, io.BytesIO(stream), Path("/bk/x"), "tenant_a", scratch,
                      {"t": ["id", "v"]})
        assert named in str(refused.value)
    finally:
        cur.connection.rollback()
        cur.connection.close()
    assert not Path("/tmp/docex-pwned").exists()


def test_row_stream_loads_rows_byte_exact(pg_database: str) -> None:
    stream = (b"\\restrict abc123\n"
              b"SET client_encoding = 'UTF8';\n"
              b"SELECT pg_catalog.set_config('search_path', '', false);\n"
              b"-- comment\n"
              b'COPY tenant_a."t" (v, "id") FROM stdin;\n'
              b"SCHEMA tenant_a\ta\\tb\n"
              b"\\N\tCOPY tenant_a.t \\\\. x\n"
              b"\\.\n")
    cur, scratch = _scratch_cursor(pg_database)
    try:
        loaded = load_rows(cur, io.BytesIO(stream), Path("/bk/x"), "tenant_a", scratch,
                           {"t": ["id", "v"]})
        cur.execute(f'SELECT id, v FROM "{scratch}".t ORDER BY v NULLS LAST')
        assert loaded == {"t"}
        assert cur.fetchall() == [("a\tb", "SCHEMA tenant_a"), ("COPY tenant_a.t \\. x", None)]
    finally:
        cur.connection.rollback()
        cur.connection.close()


# -- split sources: only DocEX's tables' rows are read -----------------------------------

FLAGS = ("--unmapped", "skip", "--cross-tenant-edges", "drop")


def _split_config(settings: Settings, tmp_path: Path) -> Path:
    from docs_support import write_config

    return write_config(settings, tmp_path / "split.yaml")


def _mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def _pg_source(pg_conn: Any, pg_database: str, sql: str) -> tuple[str, str]:
    schema = f"src_{uuid.uuid4().hex[:8]}"
    url = make_pg_source(pg_conn, pg_database, schema)
    if sql:
        with pg_conn.cursor() as cur:
            cur.execute(sql.replace("{s}", f'"{schema}".'))
    return url, schema


def test_pg_split_source_extra_objects_stop_the_run_unless_ignored(
        settings_factory: Callable[..., Settings], tmp_path: Path, pg_conn: Any,
        pg_database: str) -> None:
    url, schema = _pg_source(pg_conn, pg_database, """
        CREATE FUNCTION {s}f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
        CREATE TRIGGER t BEFORE INSERT ON {s}document FOR EACH ROW EXECUTE FUNCTION {s}f();
        CREATE VIEW {s}v AS SELECT id FROM {s}document;
        CREATE TABLE {s}app (id int); INSERT INTO {s}app VALUES (1)""")
    settings = settings_factory("postgresql")
    config, args = _split_config(settings, tmp_path), ["--source", url, "--source-schema",
                                                       schema, "--mapping",
                                                       str(_mapping(tmp_path)), *FLAGS]
    code, plan = cli_json(config, "split", "plan", *args)
    assert code == 1
    found = {p["message"].split(" is not")[0] for p in plan["findings"]
             if p["kind"] == "extra_objects" and p["resolved_by"] is None}
    assert found == {"function f", "trigger t on table document", "view v", "table app"}
    code, report = cli_json(config, "split", "run", *args)
    assert code == 1 and make_backend(settings).discover() == []
    code, report = cli_json(config, "split", "run", *args, "--ignore-extra-objects")
    assert code == 0, report
    backend = make_backend(settings)
    assert "app" not in backend.catalog("acme") and set(backend.catalog("acme")) == set(
        TABLE_NAMES)
    backend.dispose()


def test_pg_split_source_with_row_security_is_never_split(
        settings_factory: Callable[..., Settings], tmp_path: Path, pg_conn: Any,
        pg_database: str) -> None:
    url, schema = _pg_source(pg_conn, pg_database,
                             "ALTER TABLE {s}docbasket ENABLE ROW LEVEL SECURITY")
    settings = settings_factory("postgresql")
    args = ["--source", url, "--source-schema", schema, "--mapping", str(_mapping(tmp_path)),
            *FLAGS, "--ignore-extra-objects"]
    code, report = cli_json(_split_config(settings, tmp_path), "split", "run", *args)
    assert code == 1
    assert [p["kind"] for p in report["findings"] if p["resolved_by"] is None] == [
        "unreadable_docex_table"]
    assert make_backend(settings).discover() == []


def test_pg_split_ignores_operators_a_source_database_defines(
        settings_factory: Callable[..., Settings], tmp_path: Path, pg_conn: Any,
        pg_database: str) -> None:
    """An "=" for varchar in public would win over the built-in on the basket filters (the
    CVE-2018-1058 pattern) and hand every tenant every basket; the split's search_path
    leaves it out."""
    url, schema = _pg_source(pg_conn, pg_database, "")
    with pg_conn.cursor() as cur:
        cur.execute("CREATE FUNCTION public.docex_any_eq(varchar, varchar) RETURNS boolean "
                    "LANGUAGE sql AS 'SELECT true';"
                    "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, "
                    "FUNCTION = public.docex_any_eq)")
    try:
        settings = settings_factory("postgresql")
        code, report = cli_json(_split_config(settings, tmp_path), "split", "run", "--source",
                                url, "--source-schema", schema, "--mapping",
                                str(_mapping(tmp_path)), *FLAGS)
        assert code == 0, report
        backend = make_backend(settings)
        with backend.tenant_connection("globex") as conn:
            docs = {r[0] for r in conn.exec_driver_sql("SELECT id FROM document")}
        backend.dispose()
        assert docs == expected()["globex"]["document"]
    finally:
        with pg_conn.cursor() as cur:
            cur.execute("DROP FUNCTION public.docex_any_eq(varchar, varchar) CASCADE")


def test_sqlite_split_source_trigger_and_table_stop_the_run_unless_ignored(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    source = make_sqlite_source(tmp_path / "single.db")
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE app (id INT)")
        conn.execute("CREATE TRIGGER t AFTER INSERT ON document BEGIN DELETE FROM app; END")
    conn.close()
    settings = settings_factory("sqlite")
    config = _split_config(settings, tmp_path)
    args = ["--source", str(source), "--mapping", str(_mapping(tmp_path)), *FLAGS]
    code, plan = cli_json(config, "split", "plan", *args)
    assert code == 1
    assert sorted(p["message"].split(" is not")[0] for p in plan["findings"]
                  if p["kind"] == "extra_objects") == ["table 'app'",
                                                       "trigger 't' on table 'document'"]
    code, _ = cli_json(config, "split", "run", *args)
    assert code == 1 and make_backend(settings).discover() == []
    code, report = cli_json(config, "split", "run", *args, "--ignore-extra-objects")
    assert code == 0, report


def test_config_key_section_is_optional(tmp_path: Path) -> None:
    from docex_ops.config.settings import load_settings

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"backup": {}}))
    assert load_settings(path).signing_key_file is None
