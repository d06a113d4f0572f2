"""A fleet's placement problems as isolation findings.

The problems are SeveralServers.reconcile()'s own (a tenant on two servers, on a
server the directory does not name, missing from the server it names, half
provisioned or half dropped): a tenant whose place is not certain cannot be
proven isolated, so each is a FAIL filed under the server it concerns.
"""

from __future__ import annotations

from collections.abc import Collection

from docex_ops.isolation.results import CheckResult, fail
from docex_ops.topology.fleet_view import PlacementProblem

NAME = "placement"
SUMMARY = ("(several servers) the tenant directory and the servers agree on where each "
           "tenant is")


def server_of_problem(problem: PlacementProblem, directory_server: str) -> str:
    """The server a problem is filed under: the one the directory names, else the first
    that holds a copy (else the directory's own server)."""
    return problem.recorded or (problem.servers[0] if problem.servers else directory_server)


def placement_findings(problems: list[PlacementProblem], location: dict[str, str],
                       selected: Collection[str] = ()) -> list[CheckResult]:
    """One FAIL per problem (only of ``selected`` tenants, when given); ``location``:
    tenant id -> schema name."""
    return [fail(NAME, p.tenant_id, f"schema {location[p.tenant_id]}", p.message)
            for p in problems if not selected or p.tenant_id in selected]
