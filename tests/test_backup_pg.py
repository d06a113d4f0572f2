"""PostgreSQL specifics: batch archives and the schema rename of restore SQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backup_data import fill_tenant
from click.testing import CliRunner

from docex_ops.backup import create_backups, find_manifests
from docex_ops.backup.archivers import make_archiver
from docex_ops.backup.pg_rewrite import SchemaRewriteError, SchemaRewriter
from docex_ops.cli import main
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager


def test_rewriter_renames_ddl_never_data() -> None:
    rw = SchemaRewriter("tenant_a", "_docex_restore_x")
    sql = [b"-- Name: t; Schema: tenant_a\n", b"CREATE SCHEMA tenant_a;\n",
           b"GRANT USAGE ON SCHEMA tenant_a TO app;\n",
           b"CREATE TABLE tenant_a.tenant_ab (\n",
           b"ALTER TABLE ONLY tenant_a.u ADD CONSTRAINT f FOREIGN KEY (x) "
           b"REFERENCES tenant_a.t(id);\n",
           b"COPY tenant_a.t (id, x) FROM stdin;\n", b"a\ttenant_a.t SCHEMA tenant_a\n",
           b"\\.\n", b"CREATE INDEX ix ON tenant_a.u USING btree (t_id);\n"]
    out = list(rw.rewrite(sql))
    assert out[0] == sql[0]
    assert out[1] == b"CREATE SCHEMA _docex_restore_x;\n"
    assert out[2] == b"GRANT USAGE ON SCHEMA _docex_restore_x TO app;\n"
    assert out[3] == b"CREATE TABLE _docex_restore_x.tenant_ab (\n"
    assert out[4].count(b"_docex_restore_x.") == 2
    assert out[6] == sql[6]  # row data is never touched
    assert out[8] == b"CREATE INDEX ix ON _docex_restore_x.u USING btree (t_id);\n"
    with pytest.raises(SchemaRewriteError):
        SchemaRewriter("tenant_a", "n").rewrite_line(b"SET search_path = tenant_a;\n")


def test_batch_archive_restores_each_tenant(settings_factory: Callable[..., Settings],
                                            tmp_path: Path) -> None:
    TenantDatabaseManager.reset()
    settings = settings_factory("postgresql")
    manager = TenantDatabaseManager(settings)
    ids = ["t1", "t2", "t3"]
    for i, tenant_id in enumerate(ids):
        manager.provision(tenant_id)
        fill_tenant(manager, tenant_id, tag=str(i), big=False)
    results = create_backups(manager, ids, tmp_path / "bk", jobs=2, batch_size=3)
    assert all(r.ok for r in results)
    assert len({r.archive for r in results}) == 1
    manifests = find_manifests(tmp_path / "bk")
    assert [m.tenants_in_archive for m in manifests] == [3, 3, 3]
    archiver = make_archiver(manager.backend)
    expected = archiver.digest_tenant("t2")
    config = tmp_path / "c.yaml"
    import yaml
    config.write_text(yaml.safe_dump({"database": {"type": "postgresql", "postgres": {
        "host": settings.postgres.host, "port": settings.postgres.port,
        "user": settings.postgres.user, "database": settings.postgres.database,
        "schema_template": settings.postgres.schema_template}}}))
    archive = str(manifests[0].archive_path)
    result = CliRunner().invoke(main, ["--config", str(config), "backup", "restore", archive])
    assert result.exit_code == 2 and "--from-tenant" in result.output
    result = CliRunner().invoke(main, ["--config", str(config), "backup", "restore", archive,
                                       "--from-tenant", "t2", "--as", "t9"])
    assert result.exit_code == 0, result.output
    assert archiver.digest_tenant("t9") == expected
    assert archiver.digest_tenant("t1") != expected
    archiver.dispose()
    TenantDatabaseManager.reset()


def test_bad_tenant_in_a_batch_costs_halves_not_one_dump_each(
        settings_factory: Callable[..., Settings], pg_conn: Any, tmp_path: Path) -> None:
    """A failed batch is retried in halves: at 2,000 tenants one pg_dump per tenant of
    a failed batch would take seconds each."""
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings_factory("postgresql"))
    ids = ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"]
    for tenant_id in ids[:-1]:
        manager.provision(tenant_id)
    # h8 exists (its schema does) but holds no DocEX table: its dump fails.
    pg_conn.cursor().execute(f'CREATE SCHEMA "{manager.backend.location("h8")}"')
    results = create_backups(manager, ids, tmp_path / "bk", jobs=1, batch_size=8)
    assert [r.tenant_id for r in results if not r.ok] == ["h8"]
    assert "h8" in (results[-1].error or "") and "no DocEX tables" in (results[-1].error or "")
    archives = sorted({r.archive.name for r in results if r.archive is not None})
    # halves: [h1-h4] ok, [h5-h8] fails -> [h5 h6] ok, [h7 h8] fails -> [h7] ok, [h8] fails
    assert len(archives) == 3
    assert sum(r.ok for r in results) == 7
    TenantDatabaseManager.reset()
