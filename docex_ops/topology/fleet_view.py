"""Reconcile the tenant directory with the schemas each server actually holds.

Nothing ambiguous is picked silently: a tenant whose schema is on two
servers, on a server the directory does not name, missing from the server
it names, or left half-provisioned or half-dropped is a problem, reported
with what to do, and left out of the tenants fleet commands act on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from docex_ops.backends.base import TenantInfo
from docex_ops.topology.directory import DROPPING, PLACED, PROVISIONING, Placement


@dataclass(frozen=True)
class PlacementProblem:
    tenant_id: str
    servers: tuple[str, ...]        # where its schema was found
    recorded: str | None            # where the directory puts it
    state: str | None               # the directory state
    message: str


@dataclass
class FleetView:
    tenants: list[TenantInfo] = field(default_factory=list)
    problems: list[PlacementProblem] = field(default_factory=list)


def reconcile(found: Mapping[str, list[TenantInfo]], placements: Mapping[str, Placement],
              directory_server: str,
              known_copies: Collection[tuple[str, str]] = ()) -> FleetView:
    """``found``: per server, what its catalog shows; ``known_copies``: (server, schema)
    pairs that are expected extra copies (a move in progress or a moved-away schema)."""
    where: dict[str, dict[str, TenantInfo]] = {}
    for server, infos in found.items():
        for info in infos:
            if (server, info.location) not in known_copies:
                where.setdefault(info.tenant_id, {})[server] = info
    view = FleetView()
    for tenant_id in sorted(set(where) | set(placements)):
        on = where.get(tenant_id, {})
        placed = placements.get(tenant_id)
        problem = _problem(tenant_id, sorted(on), placed, directory_server)
        if problem is not None:
            view.problems.append(problem)
        elif placed is not None:
            view.tenants.append(replace(on[placed.server], server=placed.server))
    return view


def _problem(tenant_id: str, on: list[str], placed: Placement | None,
             directory_server: str) -> PlacementProblem | None:
    def report(message: str) -> PlacementProblem:
        return PlacementProblem(tenant_id, tuple(on), placed.server if placed else None,
                                placed.state if placed else None, message)

    if placed is None:
        return report(f"tenant {tenant_id!r} exists on {_names(on)} but the tenant directory "
                      f"(server {directory_server!r}) does not name it; check which copy is "
                      f"right, then `docex-ops tenants place {tenant_id} --server NAME`")
    if placed.state == PROVISIONING:
        return report(f"tenant {tenant_id!r}: provisioning on {placed.server!r} did not "
                      f"finish; rerun `docex-ops tenants provision {tenant_id}`")
    if placed.state == DROPPING:
        return report(f"tenant {tenant_id!r}: dropping on {placed.server!r} did not finish; "
                      f"rerun `docex-ops tenants drop {tenant_id} --yes`")
    if len(on) > 1:
        return report(f"tenant {tenant_id!r} exists on {_names(on)}; the directory names "
                      f"{placed.server!r}: drop the stray copy after checking it")
    if not on:
        return report(f"tenant {tenant_id!r}: the directory names server {placed.server!r} "
                      "but its schema is not there")
    if on[0] != placed.server:
        return report(f"tenant {tenant_id!r} is on {on[0]!r} but the directory names "
                      f"{placed.server!r}")
    if placed.state not in PLACED:
        return report(f"tenant {tenant_id!r} is in unknown directory state {placed.state!r}")
    return None


def _names(servers: list[str]) -> str:
    return "servers " + ", ".join(repr(s) for s in servers) if servers else "no server"
