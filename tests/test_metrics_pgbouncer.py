"""`docex-ops metrics` behind a real PgBouncer (pooler_admin configured): its pools and
settings as docex_ops_pgbouncer_* series."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from test_metrics_cli import one, scrape
from test_pgbouncer_ops import bouncer, config_file, manager, raw  # noqa: F401 - fixtures

from docex_ops.manager.tenant_manager import TenantDatabaseManager


def test_pgbouncer_pools_are_series(manager: TenantDatabaseManager,  # noqa: F811
                                    config_file: Path, pg_database: str) -> None:  # noqa: F811
    for tenant in ("p1", "p2"):
        with manager.tenant_transaction(tenant) as session:
            session.execute(text("SELECT 1"))
    found = scrape(config_file)
    assert one(found, "docex_ops_pgbouncer_default_pool_size") == 2
    ours = {dict(labels)["state"]: value for labels, value
            in found["docex_ops_pgbouncer_server_connections"].items()
            if dict(labels)["database"] == pg_database}
    assert set(ours) == {"active", "idle", "used"} and sum(ours.values()) <= 2
    assert one(found, "docex_ops_pgbouncer_transactions_total", database=pg_database) >= 1
    assert one(found, "docex_ops_tenants", server="default", state="current") == 2
