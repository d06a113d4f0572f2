"""The shipped DocEX history: same result by every path, data kept, losses refused."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from docex_expected import expected_catalog
from sqlalchemy import text

from docex_ops.backends.catalog import without_names
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate import MigrationScripts, StepOptions, TenantStep, migrate_tenant

SCRIPTS = MigrationScripts()


def _step(manager: TenantDatabaseManager, tenant: str, target: str | None,
          action: str = "upgrade", **options: object) -> str:
    step = TenantStep(tenant, manager.backend.location(tenant), None, target, action)
    result = migrate_tenant(manager.backend, SCRIPTS, step, StepOptions(**options))  # type: ignore[arg-type]
    assert result.ok, result.error
    return result.path


def test_base_to_head_equals_provisioning(manager: TenantDatabaseManager) -> None:
    manager.provision("provisioned")
    manager.backend.create("upgraded", "")
    _step(manager, "upgraded", SCRIPTS.head)
    assert manager.backend.catalog("upgraded") == manager.backend.catalog("provisioned")
    revisions = manager.backend.read_revisions(["upgraded", "provisioned"])
    assert revisions == {"upgraded": SCRIPTS.head, "provisioned": SCRIPTS.head}


def test_every_revision_same_by_fast_and_online_path(manager: TenantDatabaseManager) -> None:
    backend = manager.backend
    backend.create("fast", "")
    backend.create("online", "")
    paths = []
    for revision in SCRIPTS.order:
        paths.append(_step(manager, "fast", revision, fast_path=True))
        assert _step(manager, "online", revision, fast_path=False) == "online"
        assert backend.catalog("fast") == backend.catalog("online"), revision
    # Every shipped step renders offline (SQLite rebuilds from frozen definitions).
    assert paths == ["fast"] * len(SCRIPTS.order)


def test_docex_2_9_9_layout_matches_docex_schema(manager: TenantDatabaseManager) -> None:
    manager.backend.create("v299", "")
    _step(manager, "v299", "0002_docex_2_9_9")
    names = manager.backend.kind == "postgresql"
    expected = expected_catalog(manager.backend.kind, widened=False)
    actual = manager.backend.catalog("v299")
    if names:
        assert actual == expected
    else:
        assert without_names(actual) == without_names(expected)


def test_2_9_9_step_keeps_coordination_ids(manager: TenantDatabaseManager) -> None:
    backend = manager.backend
    backend.create("old", "")
    _step(manager, "old", "0001_docex_pre_2_9")
    group = uuid.uuid4()
    now = dt.datetime(2026, 1, 1)
    with backend.tenant_connection("old") as conn:
        conn.execute(text("INSERT INTO docbasket VALUES ('bas_1', 'b', NULL, '{}', 'active', "
                          ":t, :t)"), {"t": now})
        conn.execute(text("INSERT INTO document (id, basket_id, name, source, path, "
                          "document_type, checksum, status, processing_attempts, created_at, "
                          "updated_at) VALUES ('doc_1', 'bas_1', 'n', 's', 'p', 'file', 'c', "
                          "'new', 0, :t, :t)"), {"t": now})
        conn.execute(text("INSERT INTO document_metadata (id, document_id, key, value, "
                          "metadata_type, profile, group_id, created_at, updated_at) VALUES "
                          "('dmt_1', 'doc_1', 'k', 'v', 'custom', 'p1', :g, :t, :t)"),
                     {"g": group if backend.kind == "postgresql" else group.hex, "t": now})
    _step(manager, "old", SCRIPTS.head)
    with backend.tenant_connection("old") as conn:
        row = conn.execute(text("SELECT coordination_id FROM document_metadata")).one()
        long_path = "s3://bucket/" + "x" * 600
        conn.execute(text("UPDATE document SET path = :p"), {"p": long_path})
    assert str(row[0]).replace("-", "") == group.hex
    columns = {c[0] for c in manager.backend.catalog("old")["document_metadata"]["columns"]}
    assert "profile" not in columns and "group_id" not in columns


def test_data_losing_downgrades_refuse_without_force(manager: TenantDatabaseManager) -> None:
    backend = manager.backend
    manager.provision("keep")
    before = backend.catalog("keep")
    step = TenantStep("keep", backend.location("keep"), SCRIPTS.head, "0002_docex_2_9_9",
                      "downgrade")
    refused = migrate_tenant(backend, SCRIPTS, step, StepOptions())
    assert refused.status == "failed" and "--force" in (refused.error or "")
    assert backend.read_revisions(["keep"]) == {"keep": SCRIPTS.head}
    assert backend.catalog("keep") == before
    forced = migrate_tenant(backend, SCRIPTS, step, StepOptions(force=True))
    assert forced.status == "done"
    assert backend.read_revisions(["keep"]) == {"keep": "0002_docex_2_9_9"}
    lossless = TenantStep("keep", step.location, None, "0001_docex_pre_2_9", "downgrade")
    assert migrate_tenant(backend, SCRIPTS, lossless, StepOptions()).status == "done"
    to_base = TenantStep("keep", step.location, None, None, "downgrade")
    assert migrate_tenant(backend, SCRIPTS, to_base, StepOptions()).status == "failed"


@pytest.mark.parametrize("kind", ["postgresql"])
def test_version_table_is_the_tenants_own(manager: TenantDatabaseManager, pg_conn: object
                                          ) -> None:
    manager.provision("own")
    schema = manager.backend.location("own")
    with pg_conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT table_schema FROM information_schema.tables "
                    "WHERE table_name = 'alembic_version' AND table_schema = %s", (schema,))
        assert cur.fetchall() == [(schema,)]
