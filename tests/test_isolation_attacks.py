"""verify-isolation against an attacker, on a deployment of 50 PostgreSQL tenants.

Every path of docs/isolation.md is planted (the issue's list first), then proven both
ways through the CLI: planted, ``verify-isolation`` exits 1 and names the object;
removed, it exits 0. The removal is the remedy the FAIL carries, pasted as it is:
so each remedy is also proven to be complete SQL that removes its finding.

The deployment has its own database (objects in ``public`` and ALTER DATABASE touch
a whole database) and every tenant its own role (``--with-role``), so the live probe
has someone to act as. Roles are cluster-wide: every role here carries this run's
token and is dropped at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import PG_HOST, PG_PORT, PG_USER, cluster_warning, pg_admin_connect
from json_support import json_data

from docex_ops.cli import main
from docex_ops.isolation import pg_probe
from docex_ops.manager.tenant_manager import TenantDatabaseManager

TENANTS_COUNT = 50


@dataclass
class Deployment:
    database: str
    token: str
    tenants: list[str]
    config: Path
    tmp: Path

    def schema(self, index: int) -> str:
        return f"tenant_{self.tenants[index]}"

    def role(self, index: int) -> str:
        return f"docex_t_{self.tenants[index]}"

    def name(self, base: str) -> str:
        """A cluster-wide name (a role) of this run only."""
        return f"{base}_{self.token}"

    def sql(self, statements: str) -> None:
        conn = pg_admin_connect(self.database)
        try:
            with conn.cursor() as cur:
                cur.execute(statements)
        finally:
            conn.close()

    def config_with(self, **isolation: Any) -> Path:
        path = self.tmp / f"config-{uuid.uuid4().hex[:6]}.yaml"
        raw = yaml.safe_load(self.config.read_text())
        path.write_text(yaml.safe_dump({**raw, "isolation": isolation}))
        return path


def _config(path: Path, database: str) -> Path:
    path.write_text(yaml.safe_dump({
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "postgresql", "postgres": {
            "host": PG_HOST, "port": PG_PORT, "user": PG_USER, "database": database}}}))
    return path


def _cli(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(config), *args])


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    token = uuid.uuid4().hex[:6]
    tenants = [f"k{token}{i:02d}" for i in range(TENANTS_COUNT)]
    database = f"docex_ops_attack_{token}"
    tmp = tmp_path_factory.mktemp("attacks")
    admin = pg_admin_connect()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    deployment = Deployment(database, token, tenants, _config(tmp / "config.yaml", database), tmp)
    try:
        result = _cli(deployment.config, "tenants", "provision", *tenants, "--with-role",
                      "--jobs", "4")
        assert result.exit_code == 0, result.output
        yield deployment
    finally:
        TenantDatabaseManager.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                        (f"%{token}%",))
            for (role,) in cur.fetchall():
                cur.execute(f'DROP ROLE "{role}"')
        admin.close()


def verify(dep: Deployment, *checks: str, allow: tuple[str, ...] = (),
           config: Path | None = None) -> tuple[int, list[dict[str, Any]]]:
    args = ["--format", "json", "verify-isolation"]
    args += [a for c in checks for a in ("--check", c)] + [a for x in allow for a in ("--allow", x)]
    result = _cli(config or dep.config, *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json_data(result.stdout)["results"]


def named(rows: list[dict[str, Any]], check: str, tenant: str, status: str, obj: str,
          detail: str = "") -> bool:
    return any(r["check"] == check and r["tenant"] == tenant and r["status"] == status
               and obj in r["object"] and detail in r["detail"] for r in rows)


def fails(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "FAIL"]


def paste_remedies(dep: Deployment, rows: list[dict[str, Any]]) -> None:
    """Runs every FAIL's remedy once, as an operator would paste it into psql."""
    remedies = list(dict.fromkeys(r["remedy"] for r in fails(rows)))
    assert remedies and all(remedies), [r for r in fails(rows) if not r["remedy"]]
    for remedy in remedies:
        assert "..." not in remedy, remedy
        # Nothing cascades into another tenant (an FK's ON DELETE CASCADE in DDL is fine).
        assert not any(line.startswith(("DROP", "REVOKE", "ALTER")) and
                       line.rstrip(";").endswith("CASCADE") for line in remedy.splitlines())
        dep.sql(remedy)


def both_ways(dep: Deployment, check: str, *objects: tuple[str, str, str]) -> list[dict[str, Any]]:
    """Planted: exit 1 naming each (tenant index or '*', object, detail); then the pasted
    remedies remove them all: exit 0. Returns the planted rows."""
    code, rows = verify(dep, check)
    assert code == 1
    for tenant, obj, detail in objects:
        tenant_id = tenant if tenant == "*" else dep.tenants[int(tenant)]
        assert named(rows, check, tenant_id, "FAIL", obj, detail), (tenant_id, obj, fails(rows))
    paste_remedies(dep, rows)
    code, after = verify(dep, check)
    assert code == 0 and fails(after) == [], fails(after)
    return rows


def test_clean_deployment_of_50_tenants_with_roles_passes_everything(dep: Deployment) -> None:
    result = _cli(dep.config, "--format", "json", "verify-isolation")
    assert result.exit_code == 0, result.output
    payload = json_data(result.stdout)
    assert {"backend", "tenants_checked", "seconds", "counts", "results"} <= payload.keys()
    assert payload["tenants_checked"] == TENANTS_COUNT
    rows = payload["results"]
    assert all({"check", "tenant", "status", "object", "detail"} <= r.keys() for r in rows)
    assert [r for r in rows if r["status"] != "PASS" and not cluster_warning(r)] == []
    probed = [r["tenant"] for r in rows if r["check"] == "probe" and r["tenant"] != "*"]
    assert probed == pg_probe.spread(dep.tenants, pg_probe.ACTORS)  # 20, spread over all 50
    assert all("all denied" in r["detail"] for r in rows
               if r["check"] == "probe" and r["tenant"] != "*")
    for check in ("reach_in", "code", "default_privileges", "roles"):
        assert {r["tenant"] for r in rows if r["check"] == check} >= set(dep.tenants), check


def test_objects_outside_the_tenants_that_reach_in(dep: Deployment) -> None:
    """The issue's view and SECURITY DEFINER function in public, and every other kind."""
    s = [dep.schema(i) for i in range(8)]
    dep.sql(f"""
        CREATE VIEW public.peek AS SELECT id, name FROM {s[0]}.docbasket;
        CREATE MATERIALIZED VIEW public.mpeek AS SELECT id FROM {s[1]}.document;
        CREATE FUNCTION public.leak() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS
          $$ BEGIN RETURN (SELECT count(*) FROM {s[2]}.document); END $$;
        CREATE FUNCTION public.fetch() RETURNS text LANGUAGE sql
          AS $$ SELECT 'SELECT * FROM {s[3]}.document' $$;
        CREATE TABLE public.notes (x int);
        ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY notes_seen ON public.notes
          USING (EXISTS (SELECT 1 FROM {s[4]}.docbasket));
        CREATE SEQUENCE {s[5]}.counter;
        ALTER TABLE public.notes ADD COLUMN n bigint DEFAULT nextval('{s[5]}.counter');
        CREATE PUBLICATION "pub {dep.token}" FOR TABLES IN SCHEMA {s[6]};
        CREATE FUNCTION public.run_any(stmt text) RETURNS void LANGUAGE plpgsql
          SECURITY DEFINER AS $$ BEGIN EXECUTE stmt; END $$;
    """)
    try:
        rows = both_ways(
            dep, "reach_in",
            ("0", "view public.peek", f"depends on table {s[0]}.docbasket"),
            ("1", "materialized view public.mpeek", f"table {s[1]}.document"),
            ("2", "function public.leak()", f"its definition names {s[2]}"),
            ("3", "function public.fetch()", f"its definition names {s[3]}"),
            ("4", "policy notes_seen on public.notes", f"{s[4]}.docbasket"),
            ("5", "default value n on public.notes", f"sequence {s[5]}.counter"),
            ("6", f"publication pub {dep.token}", f"publishes schema {s[6]}"),
            ("*", "function public.run_any(pg_catalog.text)", "with dynamic SQL (EXECUTE)"))
        # Nothing else was judged to reach in: one finding per planted object.
        assert len(fails(rows)) == 8
    finally:
        dep.sql(f"DROP TABLE IF EXISTS public.notes; DROP SEQUENCE IF EXISTS {s[5]}.counter;"
                f"DROP VIEW IF EXISTS public.peek; DROP FUNCTION IF EXISTS public.leak();"
                f'DROP PUBLICATION IF EXISTS "pub {dep.token}"')


def test_security_definer_routines_callable_by_others(dep: Deployment) -> None:
    """A SECURITY DEFINER routine of an operator names no tenant, yet whatever it calls
    runs with the operator's rights: a FAIL while anyone else may call it."""
    dep.sql("""
        CREATE FUNCTION public.count_of(s text) RETURNS bigint LANGUAGE plpgsql AS
          $$ DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %I.document', s)
             INTO n; RETURN n; END $$;
        CREATE FUNCTION public.stats(s text) RETURNS bigint LANGUAGE sql SECURITY DEFINER
          AS $$ SELECT public.count_of(s) $$;
        CREATE FUNCTION public.ops_only() RETURNS int LANGUAGE sql SECURITY DEFINER
          AS 'SELECT 1';
        REVOKE EXECUTE ON FUNCTION public.ops_only() FROM PUBLIC;
    """)
    try:
        rows = both_ways(dep, "reach_in", ("*", "function public.stats(pg_catalog.text)",
                                           "callable by PUBLIC"))
        assert not named(rows, "reach_in", "*", "FAIL", "public.ops_only")  # operators only
        assert not named(rows, "reach_in", "*", "FAIL", "public.count_of")  # runs as caller
    finally:
        dep.sql("DROP FUNCTION IF EXISTS public.stats(text); DROP FUNCTION public.count_of(text);"
                "DROP FUNCTION public.ops_only()")


def test_a_foreign_table_in_a_tenant(dep: Deployment) -> None:
    """A door to another database or server: a FAIL of contents, not an oddity."""
    schema = dep.schema(48)
    dep.sql(f"""
        CREATE EXTENSION IF NOT EXISTS postgres_fdw;
        CREATE SERVER "elsewhere {dep.token}" FOREIGN DATA WRAPPER postgres_fdw
          OPTIONS (dbname 'postgres');
        CREATE FOREIGN TABLE {schema}.outbox (id text) SERVER "elsewhere {dep.token}";
    """)
    try:
        both_ways(dep, "contents", ("48", f"{schema}.outbox", "another database or server"))
    finally:
        dep.sql(f'DROP FOREIGN TABLE IF EXISTS {schema}.outbox; DROP SERVER "elsewhere '
                f'{dep.token}"; DROP EXTENSION postgres_fdw')


def test_an_accepted_object_is_a_pass_that_says_so(dep: Deployment) -> None:
    dep.sql(f"CREATE VIEW public.report AS SELECT count(*) AS n FROM {dep.schema(9)}.document")
    try:
        code, rows = verify(dep, "reach_in", allow=("public.report",))
        assert code == 0
        assert named(rows, "reach_in", dep.tenants[9], "PASS", "view public.report",
                     "accepted with --allow public.report")
    finally:
        dep.sql("DROP VIEW public.report")


def test_code_inside_a_tenant(dep: Deployment) -> None:
    """The issue's dynamic-SQL function and trigger calling public, and the other kinds."""
    s = [dep.schema(i) for i in range(10, 17)]
    dep.sql(f"""
        CREATE FUNCTION {s[0]}.spread() RETURNS void LANGUAGE plpgsql AS $$
          BEGIN EXECUTE format('INSERT INTO %I.docbasket SELECT * FROM docbasket',
                               'tenant_' || 'other'); END $$;
        CREATE FUNCTION public.copy_out() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN EXECUTE 'INSERT INTO {s[6]}.docbasket SELECT ($1).*' USING NEW;
                RETURN NEW; END $$;
        CREATE TRIGGER copy_out AFTER INSERT ON {s[1]}.docbasket
          FOR EACH ROW EXECUTE FUNCTION public.copy_out();
        CREATE PROCEDURE {s[2]}.tidy() LANGUAGE sql AS 'SELECT 1';
        CREATE RULE mirror AS ON UPDATE TO {s[3]}.processors DO ALSO NOTIFY mirror;
        CREATE FUNCTION public.always(t text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
        ALTER TABLE {s[4]}.docbasket ADD CONSTRAINT looks_fine CHECK (public.always(name));
        CREATE FUNCTION {s[5]}.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
          $$ BEGIN NULL; END $$;
        CREATE EVENT TRIGGER "ddl {dep.token}" ON ddl_command_end
          EXECUTE FUNCTION {s[5]}.on_ddl();
    """)
    try:
        code, rows = verify(dep, "code", allow=(f"{s[2]}.tidy",))
        assert code == 1 and named(rows, "code", dep.tenants[12], "PASS",
                                   f"procedure {s[2]}.tidy()", "accepted with --allow")
        both_ways(dep, "code",
                  ("10", f"function {s[0]}.spread()", "which DocEX never has"),
                  ("11", f"trigger copy_out on {s[1]}.docbasket",
                   "function public.copy_out() outside the tenant"),
                  ("12", f"procedure {s[2]}.tidy()", "which DocEX never has"),
                  ("13", f"rule mirror on {s[3]}.processors", "rewrites every statement"),
                  ("14", f"table constraint looks_fine on {s[4]}.docbasket",
                   "calls function public.always(text) outside the tenant"),
                  ("15", f"event trigger ddl {dep.token}", "on every DDL statement"),
                  ("15", f"function {s[5]}.on_ddl()", "which DocEX never has"))
        # The trigger's public function writes into another tenant: reach_in names it.
        code, rows = verify(dep, "reach_in")
        assert code == 1 and named(rows, "reach_in", dep.tenants[16], "FAIL",
                                   "function public.copy_out()", f"names {s[6]}")
    finally:
        dep.sql("DROP FUNCTION IF EXISTS public.copy_out(); DROP FUNCTION IF EXISTS "
                "public.always(text)")


def test_default_privileges(dep: Deployment) -> None:
    """The issue's IN SCHEMA ... TO PUBLIC, a tenant role's global default to another
    tenant's role, and the operator's own default to an outsider."""
    outsider = dep.name("reporting")
    dep.sql(f"""
        CREATE ROLE {outsider} NOLOGIN;
        ALTER DEFAULT PRIVILEGES IN SCHEMA {dep.schema(20)} GRANT SELECT ON TABLES TO PUBLIC;
        ALTER DEFAULT PRIVILEGES FOR ROLE {dep.role(21)}
          GRANT SELECT, INSERT ON TABLES TO {dep.role(22)};
        ALTER DEFAULT PRIVILEGES FOR ROLE {PG_USER} GRANT SELECT ON SEQUENCES TO {outsider};
    """)
    try:
        both_ways(dep, "default_privileges",
                  ("20", f"default privileges for {PG_USER} in {dep.schema(20)}",
                   "SELECT to PUBLIC"),
                  ("21", f"default privileges for {dep.role(21)}",
                   f"SELECT, INSERT to role {dep.role(22)}"),
                  ("*", f"default privileges for {PG_USER}",
                   f"every sequence the operator {PG_USER} creates, in every tenant"))
    finally:
        dep.sql(f"DROP OWNED BY {outsider}; DROP ROLE {outsider}")


def test_roles_that_reach_a_tenant(dep: Deployment) -> None:
    """The issue's login role with USAGE (with or without SELECT), BYPASSRLS included, and
    columns, memberships, owners, an operator's members, a superuser login."""
    eve, mal, trudy, group, frank, owner, op, peter, sup, maker = (dep.name(n) for n in (
        "eve", "mal", "trudy", "readers", "frank", "owner", "op", "peter", "sup", "maker"))
    s = [dep.schema(i) for i in range(24, 31)]
    dep.sql(f"""
        CREATE ROLE {eve} LOGIN; CREATE ROLE {mal} LOGIN BYPASSRLS; CREATE ROLE {trudy} LOGIN;
        CREATE ROLE {group} NOLOGIN; CREATE ROLE {frank} LOGIN IN ROLE {group};
        CREATE ROLE {owner} NOLOGIN; CREATE ROLE {op} NOLOGIN; CREATE ROLE {peter} LOGIN;
        CREATE ROLE {sup} LOGIN SUPERUSER; CREATE ROLE {maker} LOGIN CREATEROLE;
        GRANT USAGE ON SCHEMA {s[0]} TO {eve};
        GRANT USAGE ON SCHEMA {s[1]} TO {mal}; GRANT SELECT ON {s[1]}.document TO {mal};
        GRANT SELECT (name) ON {s[2]}.docbasket TO {eve};
        GRANT {dep.role(27)} TO {trudy};
        GRANT USAGE ON SCHEMA {s[4]} TO {group}; GRANT SELECT ON ALL TABLES IN SCHEMA {s[4]}
          TO {group};
        CREATE TABLE {s[5]}.handover (x int); ALTER TABLE {s[5]}.handover OWNER TO {owner};
        GRANT USAGE ON SCHEMA {s[6]} TO {op}; GRANT {op} TO {peter};
    """)
    config = dep.config_with(allowed_roles=[op])
    try:
        code, rows = verify(dep, "roles", config=config)
        assert code == 1
        t = dep.tenants
        assert named(rows, "roles", t[24], "FAIL", f"role {eve}", f"USAGE on schema {s[0]}")
        assert named(rows, "roles", t[25], "FAIL", f"role {mal}", "BYPASSRLS")
        assert named(rows, "roles", t[25], "FAIL", f"role {mal}", f"SELECT on table {s[1]}.doc")
        assert named(rows, "roles", t[26], "FAIL", f"role {eve}",
                     f"SELECT on column {s[2]}.docbasket.name")
        assert named(rows, "roles", t[27], "FAIL", f"role {trudy}",
                     f"owner of schema {s[3]} through role {dep.role(27)}")
        assert named(rows, "roles", t[28], "FAIL", f"role {group}", f"{s[4]}.docbasket")
        # Its 13 rights, the first six named in a fixed order: the schema's, then by name.
        assert named(rows, "roles", t[28], "FAIL", f"role {group}",
                     f"USAGE on schema {s[4]}; SELECT on table {s[4]}.alembic_version; "
                     f"SELECT on table {s[4]}.doc_events; SELECT on table {s[4]}.docbasket")
        assert named(rows, "roles", t[28], "FAIL", f"role {frank}", f"through role {group}")
        assert named(rows, "roles", t[29], "FAIL", f"role {owner}", f"owns table {s[5]}.handover")
        assert named(rows, "roles", "*", "FAIL", f"role {peter}", f"belongs to {op}")
        assert not named(rows, "roles", t[30], "FAIL", f"role {op}")  # an allowed operator
        assert named(rows, "roles", "*", "WARN", f"role {mal}", "BYPASSRLS")
        assert named(rows, "roles", "*", "WARN", f"role {mal}", repr(t[25]))
        assert named(rows, "roles", "*", "WARN", f"role {sup}", "SUPERUSER: reads and writes")
        assert named(rows, "roles", "*", "WARN", f"role {maker}", "CREATEROLE: it can grant")
        assert any(r["remedy"] == f'ALTER ROLE "{sup}" NOSUPERUSER;' for r in rows)
        # A WARN's remedy is a judgement call: in JSON, never in the script to paste.
        table = _cli(config, "verify-isolation", "--check", "roles").stdout
        assert f'REVOKE USAGE ON SCHEMA "{s[0]}" FROM "{eve}";' in table
        assert "NOSUPERUSER" not in table
        paste_remedies(dep, rows)
        code, after = verify(dep, "roles", config=config)
        assert code == 0 and fails(after) == []
        # The WARNs stay until accepted; accepted, they are PASS rows that say so.
        code, accepted = verify(dep, "roles", allow=(mal, sup), config=config)
        assert named(accepted, "roles", "*", "PASS", f"role {sup}", "accepted with --allow")
        # Without the op role listed, its grant is a finding of its own.
        code, rows = verify(dep, "roles")
        assert code == 1 and named(rows, "roles", t[30], "FAIL", f"role {op}", "USAGE")
    finally:
        dep.sql(f"DROP TABLE IF EXISTS {s[5]}.handover; REVOKE USAGE ON SCHEMA {s[6]} "
                f"FROM {op}; ALTER ROLE {sup} NOSUPERUSER")


def test_writable_schemas_on_a_search_path(dep: Deployment) -> None:
    """The issue's GRANT CREATE ON SCHEMA public TO PUBLIC, a schema on the database's path
    writable by a tenant role, one on the operator's path owned by an outsider; the
    outsider's own schema on its own path harms nobody else."""
    shared, ops, outsider = f"shared_{dep.token}", f"ops_{dep.token}", dep.name("writer")
    own = f"own_{dep.token}"
    dep.sql(f"""
        GRANT CREATE ON SCHEMA public TO PUBLIC;
        CREATE SCHEMA {shared}; GRANT CREATE ON SCHEMA {shared} TO {dep.role(32)};
        ALTER DATABASE {dep.database} SET search_path = "$user", public, {shared};
        CREATE ROLE {outsider} LOGIN; CREATE SCHEMA {ops} AUTHORIZATION {outsider};
        ALTER ROLE {PG_USER} IN DATABASE {dep.database} SET search_path = public, {ops};
        CREATE SCHEMA {own} AUTHORIZATION {outsider};
        ALTER ROLE {outsider} IN DATABASE {dep.database} SET search_path = {own};
    """)
    try:
        both_ways(dep, "writable_path",
                  ("*", "schema public", "PUBLIC (every role) can CREATE in public"),
                  ("*", f"schema {shared}", f"the role {dep.role(32)} of tenant"),
                  ("*", f"schema {ops}", f"role {outsider} can CREATE in {ops} (as its owner), "
                   f"which is on the search path of ALTER ROLE ... IN DATABASE {PG_USER}"))
        assert not named(verify(dep, "writable_path")[1], "writable_path", "*", "FAIL",
                         f"schema {own}")
    finally:
        dep.sql(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; DROP SCHEMA {shared};"
                f"DROP SCHEMA {ops}; DROP SCHEMA {own};"
                f"ALTER DATABASE {dep.database} RESET search_path;"
                f"ALTER ROLE {PG_USER} IN DATABASE {dep.database} RESET search_path;"
                f"ALTER ROLE {outsider} IN DATABASE {dep.database} RESET search_path;"
                f"DROP ROLE {outsider}")


def test_live_probe_as_tenant_roles(dep: Deployment) -> None:
    """Acting as the tenants' own roles: a grant to another tenant, a membership in
    another tenant's role, CREATE on public, a public view readable by everyone."""
    actors = pg_probe.spread(dep.tenants, pg_probe.ACTORS)
    a, b, c = (dep.tenants.index(t) for t in actors[:3])  # tenants 0, 2, 5 act
    dep.sql(f"""
        GRANT USAGE ON SCHEMA {dep.schema(a + 1)} TO {dep.role(a)};
        GRANT SELECT, INSERT ON {dep.schema(a + 1)}.document TO {dep.role(a)};
        GRANT {dep.role(b + 1)} TO {dep.role(b)};
        GRANT CREATE ON SCHEMA public TO {dep.role(c)};
        CREATE VIEW public.everyone AS SELECT id FROM {dep.schema(40)}.docbasket;
        GRANT SELECT ON public.everyone TO PUBLIC;
    """)
    try:
        rows = both_ways(
            dep, "probe",
            (str(a + 1), f"{dep.schema(a + 1)}.document",
             f"as role {dep.role(a)} of tenant {dep.tenants[a]!r} the probe could SELECT, INSERT"),
            (str(b + 1), f"{dep.schema(b + 1)}.docbasket", "could SELECT, INSERT, UPDATE, DELETE"),
            (str(c), "schema public", "could CREATE in schema public"),
            (str(a), "public.everyone", "could SELECT"))
        by_object = {r["object"]: r["remedy"] for r in fails(rows)}
        assert by_object[f"{dep.schema(b + 1)}.docbasket"] == \
            f'REVOKE "{dep.role(b + 1)}" FROM "{dep.role(b)}";'
        assert by_object["schema public"] == f'REVOKE CREATE ON SCHEMA "public" FROM ' \
                                             f'"{dep.role(c)}";'
    finally:
        dep.sql(f"DROP VIEW IF EXISTS public.everyone;"
                f"REVOKE USAGE ON SCHEMA {dep.schema(a + 1)} FROM {dep.role(a)}")


def test_what_was_caught_before_stays_caught(dep: Deployment) -> None:
    """Materialized view over another tenant, a cross-tenant default on a sequence, a
    shadowing public.document, a database search_path naming a tenant, a cross-schema
    foreign key, a PUBLIC grant on a tenant table, a missing DocEX table (contents, and
    routing resolving the name to nothing): exit 1, then their remedies, exit 0."""
    s = [dep.schema(i) for i in range(41, 48)]
    checks = ("references", "shadowing", "search_path", "privileges", "contents", "routing")
    dep.sql(f"""
        CREATE MATERIALIZED VIEW {s[0]}.theirs AS SELECT id FROM {s[1]}.docbasket;
        CREATE SEQUENCE {s[1]}.counter;
        ALTER TABLE {s[2]}.processors ADD COLUMN n bigint DEFAULT nextval('{s[1]}.counter');
        CREATE TABLE public.document (id text);
        ALTER DATABASE {dep.database} SET search_path = "$user", public, {s[3]};
        ALTER TABLE {s[4]}.document ADD COLUMN other varchar(36) REFERENCES {s[5]}.docbasket(id);
        GRANT SELECT ON {s[5]}.document TO PUBLIC;
        DROP TABLE {s[6]}.processing_operations, {s[6]}.processors;
    """)
    try:
        code, rows = verify(dep, *checks)
        assert code == 1
        t = dep.tenants
        assert named(rows, "references", t[41], "FAIL", f"materialized view {s[0]}.theirs",
                     f"table {s[1]}.docbasket")
        assert named(rows, "references", t[43], "FAIL", f"table {s[2]}.processors",
                     f"sequence {s[1]}.counter")
        assert named(rows, "shadowing", "*", "FAIL", "public.document", "table named like")
        assert named(rows, "search_path", t[44], "FAIL", "ALTER DATABASE", f"names tenant "
                     f"schema {s[3]}")
        assert named(rows, "references", t[45], "FAIL", f"table {s[4]}.document",
                     f"table {s[5]}.docbasket of tenant")
        assert named(rows, "privileges", t[46], "FAIL", f"{s[5]}.document", "PUBLIC has SELECT")
        assert named(rows, "contents", t[47], "FAIL", s[6], "missing: processing_operations, "
                     "processors")
        assert named(rows, "routing", t[47], "FAIL", "processors", "resolves to nothing")
        paste_remedies(dep, rows)
        code, after = verify(dep, *checks)
        assert code == 0 and fails(after) == []
    finally:
        dep.sql(f"DROP TABLE IF EXISTS public.document_not_docex, public.document;"
                f"DROP MATERIALIZED VIEW IF EXISTS {s[0]}.theirs;"
                f"ALTER TABLE {s[2]}.processors DROP COLUMN IF EXISTS n;"
                f"DROP SEQUENCE IF EXISTS {s[1]}.counter;"
                f"ALTER DATABASE {dep.database} RESET search_path")


def test_failures_only_output_and_remedy_script(dep: Deployment,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    dep.sql(f"CREATE FUNCTION {dep.schema(47)}.steal() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    try:
        full = _cli(dep.config, "verify-isolation", "--check", "code", "--check", "contents")
        assert full.exit_code == 1 and full.stdout.count(" PASS ") >= 99
        short = _cli(dep.config, "verify-isolation", "--failures-only", "--check", "code",
                     "--check", "contents")
        lines = short.stdout.splitlines()
        assert lines[0].split() == ["check", "PASS", "WARN", "FAIL"]
        assert lines[2].split() == ["contents", "50", "0", "0"]
        assert lines[3].split() == ["code", "49", "0", "1"]
        assert " PASS " not in "\n".join(lines[5:])
        assert any(line.startswith("code ") and "FAIL" in line for line in lines[5:])
        script = short.stdout.split("-- Remedies", 1)[1].splitlines()
        assert script[1] == f"-- FAIL code {dep.tenants[47]}: function {dep.schema(47)}.steal()"
        assert script[2] == f'DROP FUNCTION "{dep.schema(47)}"."steal"();'
        # On a terminal with more than 50 rows, failures only is the default.
        from docex_ops.cli import isolation as cli_isolation

        monkeypatch.setattr(cli_isolation, "on_terminal", lambda: True)
        auto = _cli(dep.config, "verify-isolation", "--check", "code", "--check", "contents")
        assert auto.stdout.splitlines()[0].split() == ["check", "PASS", "WARN", "FAIL"]
        fifty = _cli(dep.config, "verify-isolation", "--check", "code")  # 50 rows: all shown
        assert fifty.stdout.count(" PASS ") == 49
        assert _cli(dep.config, "verify-isolation", "--check", "code",
                    "--all-rows").stdout.count(" PASS ") == 49
        payload = json_data(_cli(dep.config, "--format", "json", "verify-isolation",
                                 "--failures-only", "--check", "code").stdout)
        assert [r["status"] for r in payload["results"]] == ["FAIL"]
        assert payload["counts"] == {"PASS": 49, "WARN": 0, "FAIL": 1}
        assert payload["checks"] == [{"check": "code", "PASS": 49, "WARN": 0, "FAIL": 1}]
    finally:
        dep.sql(f"DROP FUNCTION IF EXISTS {dep.schema(47)}.steal()")
