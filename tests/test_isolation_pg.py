"""verify-isolation on a real PostgreSQL: each planted violation is caught and named."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import cluster_warning, make_settings, pg_admin_connect

from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.settings import Settings
from docex_ops.isolation import CheckResult, Status, verify_isolation
from docex_ops.isolation.pg_facts import ServerFacts
from docex_ops.isolation.pg_pooler import judge_pooler
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import TenantIdError
from docex_ops.tenants.roles import ensure_tenant_role


@pytest.fixture
def pg_manager(settings_factory: Callable[..., Settings]) -> Iterator[TenantDatabaseManager]:
    TenantDatabaseManager.reset()
    yield TenantDatabaseManager(settings_factory("postgresql"))
    TenantDatabaseManager.reset()


def _provision(manager: TenantDatabaseManager, *tenants: str) -> dict[str, str]:
    for tenant in tenants:
        assert manager.provision(tenant)
    return {t: manager.backend.location(t) for t in tenants}


def _problems(results: list[CheckResult], check: str | None = None,
              expected_warnings: bool = False) -> list[CheckResult]:
    """Rows that are not PASS; ``expected_warnings``: less the WARNs a deployment without
    tenant roles on this shared cluster has (powerful logins, nobody to probe as)."""
    return [r for r in results if r.status != Status.PASS and (check is None or r.check == check)
            and not (expected_warnings and cluster_warning(r))
            and not (expected_warnings and r.check == "probe" and r.object == "tenant roles")]


def _has(results: list[CheckResult], check: str, tenant: str, status: Status,
         obj: str, detail: str = "") -> bool:
    return any(r.check == check and r.tenant == tenant and r.status == status
               and obj in r.object and detail in r.detail for r in results)


def test_clean_deployment_of_50_tenants_passes(pg_manager: TenantDatabaseManager) -> None:
    tenants = [f"c{i:02d}" for i in range(50)]
    _provision(pg_manager, *tenants)
    report = verify_isolation(pg_manager)
    assert report.tenants_checked == 50
    assert _problems(report.results, expected_warnings=True) == []
    # Without tenant roles the live probe has no one to act as: said, not passed.
    assert [(r.status, r.object) for r in report.results if r.check == "probe"] == \
        [(Status.WARN, "tenant roles")]
    for check in ("contents", "references", "privileges", "readers", "routing"):
        assert sorted(r.tenant for r in report.results if r.check == check
                      and r.tenant != "*") == tenants, check
    assert pg_manager.list_tenant_databases() == []  # every probe engine was closed


def test_cross_tenant_objects_are_caught(pg_manager: TenantDatabaseManager, pg_conn: Any) -> None:
    s = _provision(pg_manager, "a", "b", "c")
    a, b = s["a"], s["b"]
    with pg_conn.cursor() as cur:
        cur.execute(f"""
            ALTER TABLE {a}.document ADD COLUMN b_basket varchar(36)
              REFERENCES {b}.docbasket(id);
            CREATE VIEW {a}.peek AS SELECT id, name FROM {b}.docbasket;
            CREATE FUNCTION {a}.steal() RETURNS bigint LANGUAGE plpgsql AS $$
              BEGIN RETURN (SELECT count(*) FROM {b}.document); END $$;
            CREATE SEQUENCE {b}.counter;
            ALTER TABLE {a}.processors ADD COLUMN n bigint DEFAULT nextval('{b}.counter');
            CREATE FUNCTION {s['c']}.copy_out() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN EXECUTE format('INSERT INTO %I.docbasket SELECT ($1).*', '{b}') USING NEW;
                    RETURN NEW; END $$;
            CREATE TRIGGER copy_out AFTER INSERT ON {s['c']}.docbasket
              FOR EACH ROW EXECUTE FUNCTION {s['c']}.copy_out();
        """)
    results = verify_isolation(pg_manager).results
    fail = Status.FAIL
    assert _has(results, "references", "a", fail, f"constraint document_b_basket_fkey on table "
                f"{a}.document", f"table {b}.docbasket of tenant 'b'")
    assert _has(results, "references", "a", fail, f"rule _RETURN on view {a}.peek",
                f"table {b}.docbasket")
    assert _has(results, "references", "a", fail, f"function {a}.steal()", f"{b}.document")
    assert _has(results, "references", "a", fail, f"default value for column n of table "
                f"{a}.processors", f"sequence {b}.counter")
    # Dynamic SQL hides the target from pg_depend; the canary catches the copy live.
    assert _has(results, "references", "c", Status.WARN, "copy_out()", f"mentions schema {b}")
    assert _has(results, "routing", "c", fail, f"{b}.docbasket", "a trigger or rule copies rows")
    assert _has(results, "contents", "a", Status.WARN, f"{a}.peek", "unexpected view")
    assert not _problems(results, "routing") or {r.tenant for r in _problems(
        results, "routing")} == {"c"}

    # Judging only b still shows what reaches into b, and no PASS hides it.
    only_b = verify_isolation(pg_manager, ["b"]).results
    assert _has(only_b, "references", "a", fail, f"{a}.document", "of tenant 'b'")
    assert not any(r.check == "references" and r.tenant == "b" and r.status == Status.PASS
                   for r in only_b)
    allowed = verify_isolation(pg_manager, ["a"], allow=[f"{a}.peek", "steal"]).results
    assert _problems(allowed, "contents") == []


def test_tenant_selection_refuses_unknown_and_hostile_ids(
        pg_manager: TenantDatabaseManager) -> None:
    _provision(pg_manager, "a")
    with pytest.raises(LookupError, match="'ghost'"):
        verify_isolation(pg_manager, ["ghost"])
    with pytest.raises(TenantIdError):
        verify_isolation(pg_manager, ["a; DROP SCHEMA public"])
    with pytest.raises(LookupError, match="unknown check"):
        verify_isolation(pg_manager, only=["nonsense"])


def test_search_path_leaking_onto_a_pooled_connection(pg_manager: TenantDatabaseManager) -> None:
    s = _provision(pg_manager, "a", "b")
    engine = pg_manager.get_tenant_engine("a")
    with engine.connect() as conn:  # application code that SETs instead of SET LOCAL
        conn.exec_driver_sql(f"SET search_path TO {s['a']}, {s['b']}")
        conn.commit()
    results = verify_isolation(pg_manager, only=["routing"]).results
    assert _has(results, "routing", "a", Status.FAIL, "connection of tenant a",
                f"includes {s['b']} of tenant 'b'")
    assert _has(results, "routing", "b", Status.PASS, "connection of tenant b")
    assert "a" in pg_manager.list_tenant_databases()  # an engine the caller had stays open


def test_privileges_public_and_tenant_roles(pg_manager: TenantDatabaseManager,
                                            pg_conn: Any) -> None:
    x, y, z = (f"r{uuid.uuid4().hex[:8]}{n}" for n in "xyz")
    s = _provision(pg_manager, x, y, z)
    backend = pg_manager.backend
    assert isinstance(backend, PostgresBackend)
    roles = [ensure_tenant_role(backend, t)[0] for t in (x, y, z)]
    try:
        assert ensure_tenant_role(backend, x) == (roles[0], False)  # idempotent
        clean = verify_isolation(pg_manager, only=["privileges", "readers"]).results
        assert _problems(clean) == []
        assert _has(clean, "readers", x, Status.PASS, s[x], f"owner {roles[0]}")
        with pg_conn.cursor() as cur:
            cur.execute(f"GRANT SELECT ON {s[y]}.docbasket TO {roles[0]};"
                        f"GRANT USAGE ON SCHEMA {s[z]} TO PUBLIC;"
                        f"GRANT {roles[1]} TO {roles[2]};")
        results = verify_isolation(pg_manager, only=["privileges", "readers"]).results
        assert _has(results, "privileges", y, Status.FAIL, f"{s[y]}.docbasket",
                    f"role {roles[0]} of tenant '{x}' has SELECT")
        assert _has(results, "privileges", y, Status.FAIL, f"schema {s[y]}",
                    f"role {roles[2]} of tenant '{z}' inherits ownership through role {roles[1]}")
        assert _has(results, "privileges", z, Status.FAIL, f"schema {s[z]}", "PUBLIC has USAGE")
        assert _has(results, "readers", y, Status.PASS, s[y], roles[2])
        assert not _has(results, "privileges", x, Status.FAIL, "")
    finally:
        with pg_conn.cursor() as cur:
            for role in roles:
                cur.execute(f"DROP OWNED BY {role} CASCADE; DROP ROLE {role}")


def test_shadowing_and_default_search_path(tmp_path: Path, schema_prefix: str) -> None:
    """Public objects and ALTER DATABASE touch the whole database: use one of our own."""
    database = f"docex_ops_iso_{uuid.uuid4().hex[:8]}"
    admin = pg_admin_connect()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    try:
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(make_settings("postgresql", tmp_path, database,
                                                      schema_prefix))
        s = _provision(manager, "a", "b")
        conn = pg_admin_connect(database)
        with conn.cursor() as cur:
            cur.execute(f"""CREATE TABLE public.document (id text);
                            CREATE SCHEMA shared; CREATE VIEW shared.docbasket AS SELECT 1 AS id;
                            ALTER DATABASE "{database}"
                              SET search_path = "$user", public, shared, {s['b']}""")
        conn.close()
        results = verify_isolation(manager).results
        assert _has(results, "shadowing", "*", Status.FAIL, "public.document", "table named like")
        assert _has(results, "shadowing", "*", Status.FAIL, "shared.docbasket", "view named like")
        assert _has(results, "search_path", "b", Status.FAIL, "ALTER DATABASE",
                    f"names tenant schema {s['b']}")
        assert not _has(results, "search_path", "a", Status.FAIL, "")
        assert _problems(results, "routing") == []  # tenant engines set their own path
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def test_pooler_detection(pg_manager: TenantDatabaseManager, pg_database: str) -> None:
    _provision(pg_manager, "a")
    direct = verify_isolation(pg_manager, only=["pooler"]).results
    assert [r.status for r in direct] == [Status.PASS]
    pooled = pg_admin_connect(pg_database)
    pooled.close()
    import psycopg2
    from conftest import PG_HOST, PG_PORT, PG_USER

    bouncer = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=pg_database,
                               application_name="pgbouncer")
    try:
        results = verify_isolation(pg_manager, only=["pooler"]).results
        assert _has(results, "pooler", "*", Status.WARN, "pg_stat_activity", "pgbouncer")
    finally:
        bouncer.close()
    facts = ServerFacts(5432, "public", "server configuration", "app", ())
    assert _has(judge_pooler(6432, facts), "pooler", "*", Status.WARN, "port 6432",
                "the server listens on 5432")
