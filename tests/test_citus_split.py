"""``split run`` into Citus tenants: each new tenant is a distributed schema on a worker,
holding exactly its rows, read back through the coordinator."""

from __future__ import annotations

from pathlib import Path

from citus_support import CitusTestCluster
from migration_helpers import cli_json
from split_data import MAPPING, expected, make_sqlite_source
from test_citus_backup import _on_worker
from test_split import FLAGS, _tenant_ids

from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager


def test_split_run_creates_distributed_tenants_with_their_rows(
        citus_manager: TenantDatabaseManager, citus_settings: Settings,
        citus_cluster: CitusTestCluster, citus_config_file: Path, tmp_path: Path) -> None:
    source = make_sqlite_source(tmp_path / "single.db")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    code, report = cli_json(citus_config_file, "split", "run", "--source", str(source),
                            "--mapping", str(mapping), *FLAGS, "--jobs", "2")
    assert code == 0, report
    assert {r["tenant"]: r["status"] for r in report["results"]} == {
        "acme": "copied", "globex": "copied"}
    for tenant, tables in expected().items():
        _on_worker(citus_manager, citus_cluster, tenant)
        assert _tenant_ids(citus_settings, tenant) == tables
    assert citus_manager.topology.problems() == []
    code, verified = cli_json(citus_config_file, "split", "verify", "--source", str(source),
                              "--mapping", str(mapping), *FLAGS)
    assert code == 0 and verified["ok"], verified
