"""split plan/run/verify against real PostgreSQL and SQLite: PG->PG, SQLite->SQLite, PG->SQLite."""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from migration_helpers import cli_json, spawn
from split_data import MAPPING, expected, make_pg_source, make_sqlite_source, rows
from sqlalchemy import text

from docex_ops.backends import make_backend
from docex_ops.backends.catalog import without_names
from docex_ops.config.settings import Settings
from docex_ops.migrate import MigrationScripts
from docex_ops.migrate.tenant import run_online
from docex_ops.schema.names import TABLE_NAMES
from docex_ops.split.copy import prepare_target
from docex_ops.split.source import SplitSource, parse_source

FLAGS = ("--unmapped", "skip", "--cross-tenant-edges", "drop")


class Source:
    def __init__(self, arg: str, schema: str) -> None:
        self.arg, self.schema = arg, schema

    def args(self, mapping: Path) -> list[str]:
        return ["--source", self.arg, "--source-schema", self.schema, "--mapping", str(mapping)]

    def fingerprint(self) -> Any:
        """Byte-for-byte (SQLite) or per-table checksums (PostgreSQL) of the source."""
        if "://" not in self.arg:
            return hashlib.sha256(Path(self.arg).read_bytes()).hexdigest()
        source = SplitSource(parse_source(self.arg, self.schema))
        try:
            with source.snapshot() as (view, _):
                return {t: view.digest(t, None, []) for t in TABLE_NAMES}
        finally:
            source.dispose()


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def _source(kind: str, tmp_path: Path, pg_conn: Any, pg_database: str) -> Source:
    if kind == "postgresql":
        schema = f"src_{uuid.uuid4().hex[:8]}"
        return Source(make_pg_source(pg_conn, pg_database, schema), schema)
    return Source(str(make_sqlite_source(tmp_path / "single.db")), "public")


def _config(settings: Settings, tmp_path: Path) -> Path:
    if settings.db_type == "postgresql":
        pg = settings.postgres
        database: dict[str, Any] = {"type": "postgresql", "postgres": {
            "host": pg.host, "port": pg.port, "user": pg.user, "database": pg.database,
            "schema_template": pg.schema_template, "control_schema": pg.control_schema}}
    else:
        database = {"type": "sqlite", "sqlite": {"path_template": settings.sqlite.path_template}}
    path = tmp_path / f"config-{settings.db_type}.yaml"
    path.write_text(yaml.safe_dump({"security": {"multi_tenancy_model": "database_level",
                                                 "tenant_database_routing": True},
                                    "database": database}))
    return path


def _tenant_ids(settings: Settings, tenant: str) -> dict[str, set[str]]:
    backend = make_backend(settings)
    found: dict[str, set[str]] = {}
    with backend.tenant_connection(tenant) as conn:
        for table in TABLE_NAMES:
            found[table] = {r[0] for r in conn.execute(text(f"SELECT id FROM {table}"))}
    backend.dispose()
    return found


@pytest.fixture(params=["same-kind-postgresql", "same-kind-sqlite", "postgresql-to-sqlite"])
def setup(request: pytest.FixtureRequest, tmp_path: Path, settings_factory: Any,
          mapping: Path) -> tuple[Source, Settings, Path]:
    source_kind, target_kind = {"same-kind-postgresql": ("postgresql", "postgresql"),
                                "same-kind-sqlite": ("sqlite", "sqlite"),
                                "postgresql-to-sqlite": ("postgresql", "sqlite")}[request.param]
    pg_database = request.getfixturevalue("pg_database")
    pg_conn = request.getfixturevalue("pg_conn") if source_kind == "postgresql" else None
    source = _source(source_kind, tmp_path, pg_conn, pg_database)
    settings = settings_factory(target_kind)
    return source, settings, _config(settings, tmp_path)


def test_problems_stop_the_plan_without_flags(setup: tuple[Source, Settings, Path],
                                              mapping: Path) -> None:
    source, _settings, config = setup
    code, plan = cli_json(config, "split", "plan", *source.args(mapping))
    assert code == 1
    kinds = {p["kind"] for p in plan["findings"] if p["resolved_by"] is None}
    assert kinds == {"unmapped_basket", "cross_tenant_dependency", "cross_tenant_event"}
    assert any("bas_b4" in p["message"] for p in plan["findings"])
    code, report = cli_json(config, "split", "run", *source.args(mapping))
    assert code == 1 and not report["ok"]
    assert make_backend(_settings).discover() == []  # nothing written


def test_plan_with_flags_counts_each_tenant(setup: tuple[Source, Settings, Path],
                                           mapping: Path) -> None:
    source, _settings, config = setup
    code, plan = cli_json(config, "split", "plan", *source.args(mapping), *FLAGS)
    assert code == 0, plan
    want = expected()
    for tenant, tables in want.items():
        assert plan["counts"][tenant] == {t: len(ids) for t, ids in tables.items()}
    assert plan["skipped"]["docbasket"] == 1
    assert plan["tenants"] == {"acme": ["bas_b1", "bas_b2"], "globex": ["bas_b3"]}


def test_split_gives_each_tenant_exactly_its_rows(setup: tuple[Source, Settings, Path],
                                                  mapping: Path) -> None:
    source, settings, config = setup
    before = source.fingerprint()
    code, report = cli_json(config, "split", "run", *source.args(mapping), *FLAGS,
                            "--jobs", "2")
    assert code == 0, report
    assert {r["tenant"]: r["status"] for r in report["results"]} == {"acme": "copied",
                                                                       "globex": "copied"}
    for tenant, tables in expected().items():
        assert _tenant_ids(settings, tenant) == tables
    assert source.fingerprint() == before
    code, verified = cli_json(config, "split", "verify", *source.args(mapping), *FLAGS)
    assert code == 0 and verified["ok"], verified
    # a rerun changes nothing: both tenants are complete
    code, again = cli_json(config, "split", "run", *source.args(mapping), *FLAGS, "--upgrade")
    assert code == 0, again
    assert {r["status"] for r in again["results"]} == {"complete"}
    assert set(make_backend(settings).read_revisions(["acme", "globex"]).values()) == {
        "0003_object_paths"}


def test_values_survive_the_split(setup: tuple[Source, Settings, Path], mapping: Path) -> None:
    source, settings, config = setup
    code, report = cli_json(config, "split", "run", *source.args(mapping), *FLAGS)
    assert code == 0, report
    backend = make_backend(settings)
    with backend.tenant_connection("acme") as conn:
        doc = conn.execute(text("SELECT raw_content, content, updated_at FROM document "
                                "WHERE id = 'doc_b1_2'")).one()
        enabled = conn.execute(text("SELECT enabled FROM processors ORDER BY id")).scalars()
        assert [bool(e) for e in enabled] == [True, False]
    backend.dispose()
    original = next(d for d in rows()["document"] if d["id"] == "doc_b1_2")
    assert doc[0] == original["raw_content"]
    content = doc[1] if isinstance(doc[1], dict) else json.loads(doc[1])
    assert content == original["content"]


def test_tenant_with_other_data_is_refused(setup: tuple[Source, Settings, Path],
                                           mapping: Path) -> None:
    source, settings, config = setup
    backend = make_backend(settings)
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    manager.provision("globex")
    with backend.tenant_connection("globex") as conn:
        conn.execute(text("INSERT INTO processors (id, name, type, config, enabled, created_at,"
                          " updated_at) VALUES ('prc_other', 'x', 't', '{}', true, "
                          "'2020-01-01', '2020-01-01')"))
    TenantDatabaseManager.reset()
    code, report = cli_json(config, "split", "run", *source.args(mapping), *FLAGS,
                            "--continue-on-error")
    assert code == 1
    status = {r["tenant"]: r["status"] for r in report["results"]}
    assert status == {"acme": "copied", "globex": "refused"}
    assert _tenant_ids(settings, "globex")["processors"] == {"prc_other"}
    backend.dispose()


_TAMPER = {
    # A value changed on its way into the tenant: the copy no longer equals the source.
    "postgresql": ["CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN NEW.value := 'tampered'; RETURN NEW; END $$",
                   "CREATE TRIGGER tamper BEFORE INSERT ON document_metadata "
                   "FOR EACH ROW EXECUTE FUNCTION tamper()"],
    "sqlite": ["CREATE TRIGGER tamper AFTER INSERT ON document_metadata BEGIN "
               "UPDATE document_metadata SET value = 'tampered' WHERE id = NEW.id; END"],
}


def test_copy_that_differs_from_the_source_is_rolled_back(
        setup: tuple[Source, Settings, Path], mapping: Path) -> None:
    source, settings, config = setup
    backend = make_backend(settings)
    from docex_ops.manager.tenant_manager import TenantDatabaseManager

    TenantDatabaseManager.reset()
    TenantDatabaseManager(settings).provision("globex")
    with backend.tenant_connection("globex") as conn:
        for statement in _TAMPER[settings.db_type]:
            conn.execute(text(statement))
    TenantDatabaseManager.reset()
    code, report = cli_json(config, "split", "run", *source.args(mapping), *FLAGS,
                            "--continue-on-error")
    assert code == 1
    results = {r["tenant"]: r for r in report["results"]}
    assert results["acme"]["status"] == "copied"
    assert results["globex"]["status"] == "failed"
    assert "verification failed: document_metadata" in results["globex"]["error"]
    assert all(not ids for ids in _tenant_ids(settings, "globex").values())  # rolled back
    backend.dispose()


@pytest.mark.parametrize("source_kind", ["postgresql", "sqlite"])
def test_sigkill_mid_run_then_rerun(source_kind: str, tmp_path: Path, settings_factory: Any,
                                    request: pytest.FixtureRequest) -> None:
    pg_database = request.getfixturevalue("pg_database")
    pg_conn = request.getfixturevalue("pg_conn") if source_kind == "postgresql" else None
    source = _source(source_kind, tmp_path, pg_conn, pg_database)
    settings = settings_factory(source_kind)
    config = _config(settings, tmp_path)
    # Many tenants, so the kill lands while work remains: one basket per tenant.
    data = rows()
    mapping = tmp_path / "many.yaml"
    mapping.write_text(yaml.safe_dump({"baskets": {b["id"]: f"t{i}" for i, b in
                                                   enumerate(data["docbasket"])}}))
    args = ["split", "run", *source.args(mapping), "--cross-tenant-edges", "drop"]
    proc = spawn(config, *args)
    assert proc.stderr is not None
    for line in proc.stderr:  # the first tenant committed: its audit line
        if '"tenant.split"' in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    code, report = cli_json(config, *args)
    assert code == 0, report
    statuses = [r["status"] for r in report["results"]]
    assert "complete" in statuses and set(statuses) <= {"complete", "copied"}
    code, verified = cli_json(config, "split", "verify", *source.args(mapping),
                              "--cross-tenant-edges", "drop")
    assert code == 0 and verified["ok"], verified


def test_targets_are_provisioned_at_the_source_revision(settings: Settings) -> None:
    backend = make_backend(settings)
    scripts = MigrationScripts()
    try:
        # head: created with the head DDL in one step; earlier: migrated up to it
        assert prepare_target(backend, scripts, "athead", scripts.head) == scripts.head
        older = scripts.order[-2]
        assert prepare_target(backend, scripts, "older", older) == older
        assert backend.read_revisions(["athead", "older"]) == {"athead": scripts.head,
                                                                "older": older}
        # the head tenant has exactly the structure the migrations give
        assert prepare_target(backend, scripts, "migrated", older) == older
        with backend.migration_connection("migrated") as conn:
            run_online(scripts, conn, "upgrade", scripts.head)
        assert without_names(backend.catalog("athead")) == \
            without_names(backend.catalog("migrated"))
        # an existing tenant is left as it is
        assert prepare_target(backend, scripts, "older", scripts.head) == older
    finally:
        backend.dispose()


def test_selection_limits_which_mapped_tenants_are_filled(
        setup: tuple[Source, Settings, Path], mapping: Path, tmp_path: Path) -> None:
    from migration_helpers import cli

    source, settings, config = setup
    args = ["split", "run", *source.args(mapping), *FLAGS]
    for bad, named in ((("--tenant", "nosuch"), "nosuch"), (("--exclude", "ghost"), "ghost"),
                       (("--tenant", "../../etc"), "../../etc")):
        code, out = cli(config, *args, *bad)
        assert code == 2 and named in out and "Traceback" not in out, out
        assert len(out.strip().splitlines()) == 1, out
    assert make_backend(settings).discover() == []  # refused: nothing was written
    code, planned = cli_json(config, *args, "--tenant", "globex", "--dry-run")
    assert code == 0 and [r["tenant"] for r in planned["results"]] == ["globex"], planned
    code, report = cli_json(config, *args, "--tenant", "acme")
    assert code == 0, report
    assert [(r["tenant"], r["status"]) for r in report["results"]] == [("acme", "copied")]
    assert [t.tenant_id for t in make_backend(settings).discover()] == ["acme"]
    assert _tenant_ids(settings, "acme") == expected()["acme"]
    listing = tmp_path / "split-tenants.txt"
    listing.write_text("acme\nglobex  # the rest\n")
    code, report = cli_json(config, *args, "--tenants-file", str(listing), "--exclude", "acme")
    assert code == 0, report
    assert [(r["tenant"], r["status"]) for r in report["results"]] == [("globex", "copied")]
    assert _tenant_ids(settings, "globex") == expected()["globex"]
