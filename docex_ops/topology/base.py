"""Where each tenant lives: the seam between operations and servers.

A topology holds one plain backend per server and answers ``server_of`` and
``by_server``. One server is a topology of one (``SingleServer``); several
independent PostgreSQL servers with a tenant directory are another
(``topology/several.py``); a Citus cluster would be a third. Operations that
fan out ask for ``by_server(tenants)`` (or ``for_each_server``) and loop over
plain per-server backends; none of them tests which topology it runs on.

The topology also owns what changes where a tenant lives (create, drop) and the
per-server job limit every per-tenant migration, restore or split takes a slot of.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


from docex_ops.backends import server_names
from docex_ops.backends.base import Backend, TenantInfo
from docex_ops.backends.contents import Guard, TenantContents
from docex_ops.config.settings import PoolSettings
from docex_ops.topology.fleet_view import PlacementProblem

if TYPE_CHECKING:
    from docex_ops.topology.citus import CitusCluster
    from docex_ops.topology.directory import Placement
    from docex_ops.topology.several import SeveralServers

R = TypeVar("R")


@dataclass(frozen=True)
class Discovery:
    """The tenants whose place is certain, and the placement problems that kept the
    others out (always empty on one server)."""

    tenants: list[TenantInfo] = field(default_factory=list)
    problems: list[PlacementProblem] = field(default_factory=list)


class Topology(ABC):
    """Servers by name, each with the backend that speaks to it alone."""

    servers: Mapping[str, Backend]
    # What kind of topology this is, for features that register one implementation per
    # kind of topology (move/movers.py): single, several, citus.
    shape: ClassVar[str] = "single"
    # The server holding docex-ops' control data (run records, runner lock, directory).
    control_server: str

    def __init__(self) -> None:
        self._server_jobs: dict[str, threading.BoundedSemaphore] = {}
        self._jobs_limit: int | None = None
        self._slots_lock = threading.Lock()

    @property
    def control(self) -> Backend:
        """The control server's backend: run records, the runner lock, the directory."""
        return self.servers[self.control_server]

    @property
    def kind(self) -> str:
        return self.control.kind

    @property
    def several(self) -> bool:
        return len(self.servers) > 1

    # -- where tenants are ----------------------------------------------------------------

    @abstractmethod
    def server_of(self, tenant_id: str) -> str:
        """The name of the server that holds (or will hold) ``tenant_id``."""

    def backend_of(self, tenant_id: str) -> Backend:
        return self.servers[self.server_of(tenant_id)]

    def holder_of(self, tenant_id: str) -> Backend:
        """The backend of the server the tenant's data is on, whatever state its place is
        in (a drop marks it before its server drops it); the control server if unknown."""
        return self.backend_of(tenant_id)

    def location(self, tenant_id: str) -> str:
        """Schema name or file path: the same on every server (a move never renames)."""
        return self.control.location(tenant_id)

    def by_server(self, tenant_ids: Iterable[str]) -> dict[str, list[str]]:
        """``tenant_ids`` grouped by server, servers in configuration order."""
        grouped: dict[str, list[str]] = {name: [] for name in self.servers}
        for tenant_id in tenant_ids:
            grouped[self.server_of(tenant_id)].append(tenant_id)
        return {name: ids for name, ids in grouped.items() if ids}

    def for_each_server(self, fn: Callable[[str, Backend, list[str]], R],
                        tenant_ids: Iterable[str] | None = None) -> dict[str, R]:
        """``fn(server, backend, its tenants)`` on each server at once, results by server in
        configuration order. With ``tenant_ids`` only the servers holding one of them
        (each given its own); without, every server (given an empty list)."""
        if tenant_ids is None:
            work = {name: list[str]() for name in self.servers}
        else:
            work = self.by_server(tenant_ids)
        if len(work) <= 1:  # no thread for the common case of one server
            return {name: fn(name, self.servers[name], ids) for name, ids in work.items()}
        with ThreadPoolExecutor(max_workers=len(work)) as pool:
            futures = {name: pool.submit(fn, name, self.servers[name], ids)
                       for name, ids in work.items()}
            return {name: future.result() for name, future in futures.items()}

    @abstractmethod
    def discover(self, with_size: bool = False) -> Discovery:
        """Every tenant of every server, checked against the directory if there is one."""

    def tenant_ids(self) -> list[str]:
        """Every tenant's id whose place is certain, sorted."""
        return [t.tenant_id for t in self.discover().tenants]

    def problems(self) -> list[PlacementProblem]:
        """The placement problems alone (one server has none, and reads nothing for it)."""
        return self.discover().problems

    def read_revisions(self, tenant_ids: Iterable[str]) -> dict[str, str | None]:
        result: dict[str, str | None] = {}
        for server, ids in self.by_server(tenant_ids).items():
            result.update(self.servers[server].read_revisions(ids))
        return result

    def several_servers(self, needs: str) -> SeveralServers:
        """This topology as several servers with a directory, for the commands only they
        have (move, rebalance, place); LookupError(``needs``) otherwise."""
        raise LookupError(needs)

    def citus_cluster(self, needs: str) -> CitusCluster:
        """This topology as a Citus cluster, for the commands only Citus has (distribute);
        LookupError(``needs``) otherwise."""
        raise LookupError(needs)

    # -- what changes where a tenant is ---------------------------------------------------

    def exists(self, tenant_id: str) -> bool:
        """Whether the tenant exists where it is recorded to be (and may be used now)."""
        return self.backend_of(tenant_id).exists(tenant_id)

    def create(self, tenant_id: str, ddl: str) -> bool:
        """Provision the tenant on its server (a directory chooses one for a new tenant)."""
        return self.backend_of(tenant_id).create(tenant_id, ddl)

    def drop(self, tenant_id: str, guard: Guard | None = None) -> None:
        """Drop the tenant on its server (a directory forgets its place too)."""
        self.backend_of(tenant_id).drop(tenant_id, guard)

    def read_contents(self, tenant_id: str) -> TenantContents | None:
        return self.backend_of(tenant_id).read_contents(tenant_id)

    def reserve(self, tenant_id: str, server: str) -> str:
        """Record ``server`` as the place of a new tenant (one server: only checks it)."""
        self.check_server(server)
        return server

    def placement(self, tenant_id: str) -> Placement | None:
        """The tenant's directory row (None: not recorded, or no directory)."""
        return None

    def destination(self, tenant_id: str | None) -> str:
        """The server a restore writes ``tenant_id`` to: where it is, or for a new tenant
        where a new one goes (None: a restore check, which may use any server)."""
        return self.control_server

    @contextmanager
    def placing(self, tenant_id: str, server: str) -> Iterator[None]:
        """Around making the tenant whole on ``server`` (a restore's promote): its place
        is recorded first and marked usable after (one server: nothing to record)."""
        yield

    def create_routed_engine(self, tenant_id: str, pool: PoolSettings) -> tuple[str, Engine]:
        """The tenant's engine and the name of the server it connects to, from one lookup."""
        server = self.server_of(tenant_id)
        return server, self.servers[server].create_tenant_engine(tenant_id, pool)

    def check_server(self, server: str) -> None:
        """LookupError unless ``server`` is configured."""
        if server not in self.servers:
            raise LookupError(f"no server {server!r} is configured; configured: "
                              + ", ".join(self.servers))

    # -- per-server job limit -------------------------------------------------------------

    def set_server_jobs(self, jobs: int | None) -> None:
        """At most ``jobs`` tenant migrations, restores or split copies at once on each
        server (a Citus cluster: each worker node), in this process (None: no limit).
        Setting the limit in force again keeps its slots: a run inside a command that set
        it must share them, not start afresh."""
        if jobs == self._jobs_limit:
            return
        self._jobs_limit = jobs
        self._server_jobs = {}

    def job_place(self, tenant_id: str, server: str) -> str:
        """Whose job slots the tenant's work on ``server`` takes: the server's (a Citus
        cluster: the worker node holding the tenant)."""
        return server

    @contextmanager
    def server_slot(self, tenant_id: str) -> Iterator[str]:
        """Held around one tenant's migration (restore, split copy): waits for a free slot
        of the tenant's server when a limit is set. Yields the server's name. Not
        reentrant: work that holds a slot must not migrate the tenant inside it."""
        server = self.server_of(tenant_id)
        with self.slot_on(self.job_place(tenant_id, server)):
            yield server

    @contextmanager
    def slot_on(self, place: str) -> Iterator[None]:
        """A job slot of ``place``: a server, or a Citus worker node (``job_place``);
        also for a tenant that has no place yet."""
        limit = self._jobs_limit
        if limit is None:
            yield
            return
        with self._slots_lock:  # made on first use: a node added since is limited too
            slot = self._server_jobs.setdefault(place, threading.BoundedSemaphore(limit))
        with slot:
            yield

    def dispose(self) -> None:
        for backend in self.servers.values():
            backend.dispose()


class SingleServer(Topology):
    """Everything on one server (PostgreSQL) or one storage root (SQLite)."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.control_server = backend.settings.directory_server
        self.servers = {self.control_server: backend}

    def server_of(self, tenant_id: str) -> str:
        return self.control_server

    def discover(self, with_size: bool = False) -> Discovery:
        return Discovery(self.backend.discover(with_size))

    def problems(self) -> list[PlacementProblem]:
        return []

    def tenant_ids(self) -> list[str]:
        return self.backend.tenant_ids()

    def check_server(self, server: str) -> None:
        known = server_names(self.backend.settings)
        if server not in known:
            raise LookupError(f"no server {server!r} is configured"
                              + (f"; configured: {', '.join(known)}" if known else
                                 " (SQLite has no servers)"))
