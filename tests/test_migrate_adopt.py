"""Adoption of tenants DocEX made, drift, and plain Alembic over every tenant."""

from __future__ import annotations

from pathlib import Path

from migration_helpers import HEAD, alembic, cli, cli_json, scripts_with
from sqlalchemy import text

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, StepOptions, TenantStep, migrate_tenant


def _docex_made(manager: TenantDatabaseManager, tenant: str, revision: str) -> None:
    """A tenant as DocEX leaves it: the tables of ``revision``, no alembic_version."""
    backend = manager.backend
    backend.create(tenant, "")
    step = TenantStep(tenant, backend.location(tenant), None, revision, "upgrade")
    assert migrate_tenant(backend, MigrationScripts(), step, StepOptions()).ok
    with backend.tenant_connection(tenant) as conn:
        conn.execute(text("DROP TABLE alembic_version"))


def test_adopt_stamps_by_structure_and_reports_drift(manager: TenantDatabaseManager,
                                                      config_file: Path) -> None:
    _docex_made(manager, "docex299", "0002_docex_2_9_9")
    _docex_made(manager, "docexnew", HEAD)
    _docex_made(manager, "drifted", HEAD)
    with manager.backend.tenant_connection("drifted") as conn:
        conn.execute(text("DROP INDEX idx_documents_status"))
    code, status = cli_json(config_file, "migrate", "status")
    assert status["counts"] == {"unversioned": 3}
    code, report = cli_json(config_file, "migrate", "upgrade")
    assert code == 1 and {r["status"] for r in report["tenants"]} == {"blocked"}
    code, dry = cli_json(config_file, "migrate", "adopt", "--dry-run")
    assert manager.backend.read_revisions(["docex299"]) == {"docex299": None}
    code, adopted = cli_json(config_file, "migrate", "adopt")
    assert code == 1  # the drifted tenant
    result = {r["tenant"]: (r["status"], r["matches"]) for r in adopted["tenants"]}
    assert result == {"docex299": ("adopted", ["0002_docex_2_9_9"]),
                      "docexnew": ("adopted", [HEAD]), "drifted": ("drift", [])}
    drift = next(r for r in adopted["tenants"] if r["tenant"] == "drifted")["problems"]
    assert any("idx_documents_status" in p for p in drift)
    assert manager.backend.read_revisions(["docex299", "docexnew", "drifted"]) == {
        "docex299": "0002_docex_2_9_9", "docexnew": HEAD, "drifted": None}
    code, report = cli_json(config_file, "migrate", "upgrade", "--exclude", "drifted")
    assert code == 0
    code, checked = cli_json(config_file, "migrate", "check", "--exclude", "drifted")
    assert code == 0 and {r["status"] for r in checked["tenants"]} == {"matches"}


def test_plain_alembic_visits_every_tenant(manager: TenantDatabaseManager,
                                           config_file: Path) -> None:
    for tenant in ("acme", "globex", "initech"):
        manager.provision(tenant)
    down = alembic(config_file, "-x", "tenant=acme,globex", "downgrade", "-1")
    assert down.returncode != 0 and "--force" in down.stdout  # data-losing step refused
    assert "Traceback" not in down.stdout + down.stderr  # Alembic's one FAILED line
    down = alembic(config_file, "-x", "tenant=acme,globex", "-x", "force=1", "downgrade", "-1")
    assert down.returncode == 0, down.stderr
    revisions = manager.backend.read_revisions(["acme", "globex", "initech"])
    assert revisions == {"acme": "0002_docex_2_9_9", "globex": "0002_docex_2_9_9",
                         "initech": HEAD}
    current = alembic(config_file, "current")
    assert current.returncode == 0
    assert current.stdout.count("0002_docex_2_9_9") == 2 and "tenant initech" in current.stdout
    offline = alembic(config_file, "-x", "tenant=acme", "upgrade",
                       "0002_docex_2_9_9:head", "--sql")
    assert offline.returncode == 0, offline.stderr
    if manager.backend.kind == "sqlite":
        assert "-- database file: " + manager.backend.location("acme") in offline.stdout
        assert "CREATE TABLE _alembic_tmp_document" in offline.stdout
    else:
        schema = manager.backend.location("acme")
        assert f'SET search_path TO "{schema}";' in offline.stdout
        assert "ALTER TABLE document ALTER COLUMN source TYPE TEXT" in offline.stdout
        assert offline.stdout.count(schema) == 1  # only in the header: DDL is unqualified
    assert manager.backend.read_revisions(["acme"]) == {"acme": "0002_docex_2_9_9"}
    up = alembic(config_file, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert set(manager.backend.read_revisions(["acme", "globex", "initech"]).values()) == {HEAD}
    assert cli(config_file, "migrate", "status", "--check")[0] == 0


def test_autogenerate_writes_a_tenant_agnostic_revision(manager: TenantDatabaseManager,
                                                        config_file: Path,
                                                        tmp_path: Path) -> None:
    scripts = scripts_with(tmp_path, {})
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {scripts}\n")
    manager.provision("existing")
    before = {t.tenant_id for t in manager.backend.discover()}
    result = alembic(config_file, "revision", "--autogenerate", "-m", "no change", ini=ini)
    assert result.returncode == 0, result.stderr
    new = [p for p in (scripts / "versions").glob("*.py") if "no_change" in p.name]
    assert len(new) == 1
    body = new[0].read_text()
    assert "tenant_" not in body and "schema=" not in body
    upgrade = body.split("def upgrade()", 1)[1].split("def downgrade()", 1)[0]
    assert "op." not in upgrade and "pass" in upgrade  # the models match head exactly
    assert {t.tenant_id for t in manager.backend.discover()} == before  # scratch dropped
