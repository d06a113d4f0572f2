"""Which tenants, at which revision, going where: read set-based, decided up front."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from docex_ops.backends.base import FOREIGN, TenantInfo
from docex_ops.migrate.scripts import MigrationScripts, RevisionError
from docex_ops.migrate.servers import (
    control_backend,
    count_by_server,
    places_of,
    servers_of,
)
from docex_ops.migrate.tenant import TenantStep
from docex_ops.tenancy import validate_all
from docex_ops.topology.base import Discovery

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.topology.fleet_view import PlacementProblem


@dataclass(frozen=True)
class Selection:
    """``--tenant`` (repeatable), ``--exclude``, ``--tenants-file``; empty = every tenant."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tenants_file: Path | None = None

    def named(self) -> list[str]:
        names = list(self.include)
        if self.tenants_file is not None:
            text = self.tenants_file.read_text(encoding="utf-8")
            names += [line.split("#", 1)[0].strip() for line in text.splitlines()]
        return validate_all(n for n in names if n)


def select_tenants(manager: TenantDatabaseManager, selection: Selection) -> Discovery:
    """Discover tenants (one catalog pass per server) and apply the selection; the
    placement problems that kept tenants out come along, to be reported.

    Every named id is validated first; a named tenant that does not exist is
    an error rather than silently skipped.
    """
    named = selection.named()
    excluded = set(validate_all(selection.exclude))
    rules = control_backend(manager)
    for tenant_id in named:
        rules.location(tenant_id)  # the tenant rules, before any catalog read
    discovery = manager.discover()
    found = discovery.tenants
    if named:
        by_id = {t.tenant_id: t for t in found}
        missing = [t for t in named if t not in by_id]
        if missing:
            raise LookupError(f"no such tenant(s): {', '.join(missing)}")
        found = [by_id[t] for t in named]
    return Discovery([t for t in found if t.tenant_id not in excluded], discovery.problems)


@dataclass(frozen=True, slots=True)  # one per tenant: 10,000 at once
class TenantStatus:
    tenant_id: str
    location: str
    revision: str | None
    state: str  # current | behind | unversioned | empty | unknown | a condition (locked, ...)
    detail: str | None = None  # why, for a condition


@dataclass(frozen=True)
class StatusReport:
    head: str | None
    tenants: list[TenantStatus]
    # Tenants left out because the directory and the servers disagree (reported).
    problems: list[PlacementProblem] = field(default_factory=list)
    servers: dict[str, str] | None = None  # tenant -> server; None with one server

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(t.state for t in self.tenants))

    @property
    def by_revision(self) -> dict[str, int]:
        return dict(Counter(t.revision or f"({t.state})" for t in self.tenants))

    @property
    def all_current(self) -> bool:
        return all(t.state == "current" for t in self.tenants)

    @property
    def by_server(self) -> dict[str, dict[str, int]] | None:
        """Per server: tenants per revision (or state, for unversioned ones)."""
        if self.servers is None:
            return None
        return count_by_server(((t.tenant_id, t.revision or f"({t.state})")
                                for t in self.tenants), self.servers)


def status(manager: TenantDatabaseManager, scripts: MigrationScripts,
           selection: Selection) -> StatusReport:
    """Every selected tenant's revision and state, and where it is."""
    found = select_tenants(manager, selection)
    report = status_of(scripts, found.tenants)
    return StatusReport(report.head, report.tenants, found.problems,
                        servers_of(manager, found.tenants))


def status_of(scripts: MigrationScripts, tenants: Iterable[TenantInfo]) -> StatusReport:
    head = scripts.head
    known = set(scripts.order)
    rows = []
    for info in tenants:
        if info.condition is not None:
            state = info.condition
        elif info.revision is None:
            state = "unversioned" if info.tables else "empty"
        elif info.revision == head:
            state = "current"
        elif info.revision in known:
            state = "behind"
        else:
            state = "unknown"
        rows.append(TenantStatus(info.tenant_id, info.location, info.revision, state,
                                 info.detail))
    return StatusReport(head, rows)


@dataclass
class Plan:
    action: str
    target: str
    steps: list[TenantStep] = field(default_factory=list)
    already: list[TenantInfo] = field(default_factory=list)        # at the target: nothing to do
    blocked: list[tuple[TenantInfo, str]] = field(default_factory=list)  # cannot run, and why
    # Not DocEX tenants (foreign schemas or files): left alone and reported, never a failure.
    skipped: list[tuple[TenantInfo, str]] = field(default_factory=list)
    # Tenants the topology left out (directory and servers disagree): reported.
    problems: list[PlacementProblem] = field(default_factory=list)
    servers: dict[str, str] | None = None  # tenant -> server; None with one server
    # tenant -> whose job slots it takes: its server, or its Citus worker node
    places: dict[str, str] = field(default_factory=dict)


def make_plan(manager: TenantDatabaseManager, scripts: MigrationScripts,
              selection: Selection, action: str, target: str) -> Plan:
    """Select the tenants and decide, per tenant, what ``action`` to ``target`` means.

    A revision id that names nothing is the operator's typo, not a per-tenant state:
    RevisionError before any tenant is looked at (relative steps depend on each tenant).
    """
    if not (target[:1] in "+-" and target[1:].isdigit()):
        scripts.resolve(target, None)
    found = select_tenants(manager, selection)
    plan = plan_steps(scripts, found.tenants, action, target)
    plan.problems = list(found.problems)
    plan.servers = servers_of(manager, found.tenants)
    plan.places = places_of(manager, found.tenants)
    return plan


def plan_steps(scripts: MigrationScripts, tenants: Sequence[TenantInfo], action: str,
               target: str) -> Plan:
    """Per tenant: resolve the target from its own revision and decide what to do."""
    plan = Plan(action, target)
    for info in tenants:
        if info.condition == FOREIGN:
            plan.skipped.append((info, f"foreign: {info.detail}; not a DocEX tenant, "
                                       "docex-ops leaves it alone"))
            continue
        if info.condition is not None:  # locked, corrupt, linked: never touched
            plan.blocked.append((info, f"{info.condition}: {info.detail or info.location}"))
            continue
        if action != "stamp" and info.revision is None and info.tables:
            plan.blocked.append((info, "unversioned: DocEX made it; run `docex-ops migrate "
                                       "adopt` first"))
            continue
        try:
            destination = scripts.resolve(target, info.revision)
            order = (scripts.position(info.revision), scripts.position(destination))
        except RevisionError as exc:
            plan.blocked.append((info, str(exc)))
            continue
        if action == "stamp":
            pass
        elif destination == info.revision:
            plan.already.append(info)
            continue
        elif action == "upgrade" and order[1] < order[0]:
            plan.blocked.append((info, f"at {info.revision}, beyond {destination}: "
                                       "use downgrade"))
            continue
        elif action == "downgrade" and order[1] > order[0]:
            plan.blocked.append((info, f"at {info.revision or 'base'}, below {destination}: "
                                       "use upgrade"))
            continue
        plan.steps.append(TenantStep(info.tenant_id, info.location, info.revision,
                                     destination, action))
    return plan
