"""verify-isolation's Citus checks on a real cluster: each FAILs on a planted violation and
PASSes on a clean cluster."""

from __future__ import annotations

from citus_support import CitusTestCluster, citus_connect
from test_citus_topology import _undistributed

from docex_ops.isolation import verify_isolation
from docex_ops.isolation.results import DEPLOYMENT, Status
from docex_ops.manager.tenant_manager import TenantDatabaseManager

CITUS_CHECKS = ("citus_distributed", "citus_coordinator", "citus_shared_tables")


def _statuses(manager: TenantDatabaseManager, check: str) -> dict[str, Status]:
    report = verify_isolation(manager, only=[check])
    assert {r.check for r in report.results} == {check}
    return {r.tenant: r.status for r in report.results}


def test_clean_cluster_passes_every_citus_check(citus_manager: TenantDatabaseManager) -> None:
    for tenant_id in ("iso1", "iso2"):
        citus_manager.provision(tenant_id)
    for check in CITUS_CHECKS:
        statuses = _statuses(citus_manager, check)
        assert statuses and set(statuses.values()) == {Status.PASS}, (check, statuses)
    assert _statuses(citus_manager, "citus_shared_tables") == {DEPLOYMENT: Status.PASS}


def test_a_schema_left_on_the_coordinator_fails_distributed_and_coordinator(
        citus_manager: TenantDatabaseManager) -> None:
    citus_manager.provision("iso3")
    _undistributed(citus_manager, "plain3")  # sharding off: local tables
    distributed = verify_isolation(citus_manager, only=["citus_distributed"])
    failed = [r for r in distributed.results if r.status == Status.FAIL]
    assert [r.tenant for r in failed] == ["plain3"]
    assert "not a distributed schema" in failed[0].detail
    assert failed[0].remedy is not None and "citus_schema_distribute" in failed[0].remedy
    coordinator = verify_isolation(citus_manager, only=["citus_coordinator"])
    on_coordinator = {r.object for r in coordinator.results if r.status == Status.FAIL}
    schema = citus_manager.backend.location("plain3")
    assert f"{schema}.docbasket" in on_coordinator and f"{schema}.document" in on_coordinator
    assert {r.tenant for r in coordinator.results if r.status == Status.FAIL} == {"plain3"}
    assert _statuses(citus_manager, "citus_coordinator")["iso3"] == Status.PASS


def test_a_shared_table_naming_tenants_fails(citus_manager: TenantDatabaseManager,
                                             citus_cluster: CitusTestCluster,
                                             schema_prefix: str) -> None:
    citus_manager.provision("iso4")
    table = f"public.{schema_prefix}shared_settings"
    conn = citus_connect(citus_cluster)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (tenant_id text, key text, value text)")
            cur.execute("SELECT create_reference_table(%s)", (table,))
        report = verify_isolation(citus_manager, only=["citus_shared_tables"])
        [finding] = [r for r in report.results if r.status == Status.FAIL]
        assert finding.object == table and "reference table" in finding.detail
        assert "tenant_id" in finding.detail
        allowed = verify_isolation(citus_manager, only=["citus_shared_tables"], allow=[table])
        assert {r.status for r in allowed.results} == {Status.PASS}  # --allow accepts it
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
    assert _statuses(citus_manager, "citus_shared_tables") == {DEPLOYMENT: Status.PASS}
