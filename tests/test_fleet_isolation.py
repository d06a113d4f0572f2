"""verify-isolation over three real servers: per-server checks, placement findings."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import cluster_warning, server_connect
from json_support import json_data

from docex_ops.cli import main
from docex_ops.config.settings import load_settings
from docex_ops.isolation import CheckResult, Status, verify_isolation
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import TenantIdError
from docex_ops.topology.several import SeveralServers

SERVERS = ["main", "b", "c"]


def _fleet(manager: TenantDatabaseManager) -> SeveralServers:
    assert isinstance(manager.topology, SeveralServers)
    return manager.topology


def _place(manager: TenantDatabaseManager, placed: dict[str, str]) -> None:
    for tenant_id, server in placed.items():
        _fleet(manager).reserve(tenant_id, server)
        assert manager.provision(tenant_id)


def _sql(manager: TenantDatabaseManager, server: str, sql: str) -> None:
    conn = server_connect(manager.settings, server)
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def _bad(results: list[CheckResult]) -> list[CheckResult]:
    """Rows that are not PASS, less the WARNs every server of a shared cluster without
    tenant roles has (its powerful logins; nobody for the live probe to act as)."""
    return [r for r in results if r.status != Status.PASS and not cluster_warning(r)
            and not (r.check == "probe" and r.object == "tenant roles")]


def test_clean_fleet_passes_with_every_row_on_its_server(fleet_manager: TenantDatabaseManager
                                                         ) -> None:
    placed = {"m1": "main", "m2": "main", "b1": "b", "b2": "b", "c1": "c", "c2": "c"}
    _place(fleet_manager, placed)
    report = verify_isolation(fleet_manager)
    assert _bad(report.results) == []
    assert report.tenants_checked == 6 and report.servers == SERVERS
    for check in ("contents", "references", "privileges", "routing"):
        rows = {r.tenant: r.server for r in report.results
                if r.check == check and r.tenant != "*"}
        assert rows == placed, check
    # Deployment checks run on every server, against that server's own port.
    pooler = [r for r in report.results if r.check == "pooler"]
    assert sorted(r.server or "" for r in pooler) == sorted(SERVERS)
    assert all(r.status == Status.PASS for r in pooler)
    order = [SERVERS.index(r.server or "") for r in report.results]
    assert order == sorted(order)                     # grouped by server
    assert fleet_manager.list_tenant_databases() == []  # routing probes closed their engines


def test_violation_named_with_its_server(fleet_manager: TenantDatabaseManager) -> None:
    _place(fleet_manager, {"b1": "b", "b2": "b", "c1": "c"})
    fleet = _fleet(fleet_manager)
    b1, b2 = fleet.location("b1"), fleet.location("b2")
    _sql(fleet_manager, "b", f"CREATE VIEW {b1}.peek AS SELECT id FROM {b2}.docbasket")
    report = verify_isolation(fleet_manager)
    bad = [(r.check, r.tenant, r.server, r.status) for r in _bad(report.results)]
    assert ("references", "b1", "b", Status.FAIL) in bad
    assert ("contents", "b1", "b", Status.WARN) in bad      # the view is unexpected there
    assert {r.server for r in _bad(report.results)} == {"b"}
    judged = verify_isolation(fleet_manager, ["c1"])          # the other server only
    assert _bad(judged.results) == [] and judged.tenants_checked == 1
    assert {r.server for r in judged.results} == {"c"}


def test_placement_problems_are_findings(fleet_manager: TenantDatabaseManager) -> None:
    _place(fleet_manager, {"good": "c", "lost": "b", "twice": "main"})
    fleet = _fleet(fleet_manager)
    fleet.servers["c"].create("orphan", "")               # on c, the directory never heard
    fleet.servers["b"].create("twice", "")                # a second copy
    _sql(fleet_manager, "b", f"DROP SCHEMA {fleet.location('lost')} CASCADE")
    good, orphan = fleet.location("good"), fleet.location("orphan")
    _sql(fleet_manager, "c", f"CREATE TABLE {orphan}.docbasket (id text); "
                             f"CREATE VIEW {good}.peek AS SELECT id FROM {orphan}.docbasket")
    report = verify_isolation(fleet_manager)
    placement = {r.tenant: r for r in report.results if r.check == "placement"}
    assert sorted(placement) == ["lost", "orphan", "twice"]
    assert all(r.status == Status.FAIL for r in placement.values())
    assert (placement["orphan"].server, placement["lost"].server,
            placement["twice"].server) == ("c", "b", "main")
    assert "does not name it" in placement["orphan"].detail
    assert "schema is not there" in placement["lost"].detail
    assert "exists on servers 'b', 'main'" in placement["twice"].detail
    assert report.fails_at(Status.FAIL)
    # A reference into the stray copy on the same server names the stray's tenant.
    assert any(r.check == "references" and r.tenant == "good" and r.server == "c"
               and "of tenant 'orphan'" in r.detail for r in report.results)
    # Named tenants: a misplaced one is a finding, not an unknown tenant.
    only = verify_isolation(fleet_manager, ["lost"], only=["routing"])
    assert [(r.check, r.tenant, r.server) for r in only.results] == [("placement", "lost", "b")]
    with pytest.raises(LookupError, match="'ghost' do not exist on any server"):
        verify_isolation(fleet_manager, ["ghost"])
    with pytest.raises(TenantIdError):
        verify_isolation(fleet_manager, ["good; DROP SCHEMA public"])
    with pytest.raises(LookupError, match="unknown check.*placement"):
        verify_isolation(fleet_manager, only=["nonsense"])


def test_cli_rows_carry_the_server(fleet_config_file: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(main, ["--config", str(fleet_config_file), *args])
        return result.exit_code, result.stdout, result.stderr

    assert run("tenants", "provision", "alpha", "--server", "b")[0] == 0
    assert run("tenants", "provision", "beta", "--server", "c")[0] == 0
    code, out, err = run("--format", "json", "verify-isolation")
    assert code == 0, out + err
    payload = json_data(out)
    assert payload["servers"] == SERVERS and payload["counts"]["FAIL"] == 0
    assert {(r["tenant"], r["server"]) for r in payload["results"]
            if r["check"] == "routing"} == {("alpha", "b"), ("beta", "c")}
    assert "(3 servers)" in err
    code, out, _ = run("verify-isolation", "--check", "contents")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["server", "check", "tenant"]
    settings = load_settings(fleet_config_file)
    conn = server_connect(settings, "c")
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA "{settings.postgres.schema_template.format(tenant_id="beta")}"'
                    " CASCADE")
    conn.close()
    code, out, err = run("--format", "json", "verify-isolation", "--check", "placement")
    assert code == 1
    assert [(r["check"], r["tenant"], r["server"], r["status"])
            for r in json_data(out)["results"]] == [("placement", "beta", "c", "FAIL")]
    assert "isolation not proven: 1 FAIL" in err
