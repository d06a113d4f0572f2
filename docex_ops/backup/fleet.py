"""Backups of a fleet: each tenant dumped from, and restored to, its own server.

One PostgresArchiver per server; an archive file never mixes servers (one
pg_dump reads one server), so ``batches`` groups tenants by server first.
A restore goes to the tenant's recorded server, or for a tenant that is not
in the directory to the least-loaded server, recorded when the verified copy
is promoted (``provisioning`` -> ``active``, the same two-step as provisioning).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from docex_ops.backends.archive import (
    ArchiveContents,
    DumpResult,
    RestoreSpec,
    Staging,
    TableDigest,
    TenantArchiver,
)
from docex_ops.backends.base import chunks
from docex_ops.backends.contents import Guard
from docex_ops.backup.pg import PostgresArchiver
from docex_ops.topology.directory import ACTIVE, ROUTABLE
from docex_ops.topology.fleet import FleetBackend

SERVER_KEY = "server"


class FleetArchiver(TenantArchiver):
    kind = "postgresql"
    extension = PostgresArchiver.extension

    def __init__(self, fleet: FleetBackend, pg_bin: str | None = None) -> None:
        self.fleet = fleet
        self.archivers = {name: PostgresArchiver(backend, pg_bin)
                          for name, backend in fleet.servers.items()}

    def batch_size(self, jobs: int) -> int:
        return min(a.batch_size(jobs) for a in self.archivers.values())

    def batches(self, tenant_ids: list[str], size: int) -> Iterator[list[str]]:
        by_server: dict[str, list[str]] = {}
        for tenant_id in tenant_ids:
            by_server.setdefault(self.fleet.server_of(tenant_id), []).append(tenant_id)
        for ids in by_server.values():
            yield from chunks(ids, size)

    def dump(self, tenant_ids: list[str], archive: Path) -> DumpResult:
        servers = {self.fleet.server_of(t) for t in tenant_ids}
        if len(servers) != 1:
            raise ValueError(f"one archive cannot hold tenants of servers {sorted(servers)}")
        return self.archivers[servers.pop()].dump(tenant_ids, archive)

    def digest_tenant(self, tenant_id: str) -> dict[str, TableDigest]:
        return self.archivers[self.fleet.server_of(tenant_id)].digest_tenant(tenant_id)

    def inspect(self, spec: RestoreSpec) -> ArchiveContents:
        return self.archivers[self.fleet.directory_server].inspect(spec)  # reads the file only

    @contextmanager
    def staged(self, spec: RestoreSpec, contents: ArchiveContents,
               target_tenant_id: str | None) -> Iterator[Staging]:
        server = self._restore_server(target_tenant_id)
        with self.archivers[server].staged(spec, contents, target_tenant_id) as staging:
            staging.extra[SERVER_KEY] = server
            yield staging

    def _restore_server(self, target: str | None) -> str:
        if target is None:  # a restore check: anywhere will do
            return self.fleet.directory_server
        placed = self.fleet.placement(target)
        if placed is not None:
            if placed.state not in ROUTABLE:
                self.fleet.server_of(target)  # raises, saying how to finish it
            return placed.server
        with self.fleet.directory.reading() as conn:
            counts = self.fleet.directory.counts(conn)
        return min(self.fleet.servers, key=lambda name: counts.get(name, 0))

    def digest_staging(self, staging: Staging) -> dict[str, TableDigest]:
        return self._of(staging).digest_staging(staging)

    def staging_revision(self, staging: Staging) -> str | None:
        return self._of(staging).staging_revision(staging)

    def promote(self, staging: Staging, tenant_id: str, guard: Guard | None = None) -> None:
        server = staging.extra[SERVER_KEY]
        self.fleet.reserve(tenant_id, server)
        self._of(staging).promote(staging, tenant_id, guard)
        with self.fleet.directory.transaction() as conn:
            self.fleet.directory.set_state(conn, tenant_id, ACTIVE)

    def discard(self, staging: Staging) -> None:
        self._of(staging).discard(staging)

    def _of(self, staging: Staging) -> PostgresArchiver:
        return self.archivers[staging.extra[SERVER_KEY]]

    def dispose(self) -> None:
        for archiver in self.archivers.values():
            archiver.dispose()
