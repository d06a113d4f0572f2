"""The run record and audit lines of a plain ``alembic`` command (migrations/env.py).

docex-ops' own runner records every run in the control schema/file and writes one
audit line per tenant it changed; plain ``alembic upgrade head`` changes the same
tenants, so it is recorded the same way, with the runner's own code
(:func:`docex_ops.migrate.runner.record_result`): ``migrate runs`` lists it and
``migrate resume`` can finish it. A command that changes no tenant (``alembic
current``, an upgrade of tenants already at head) records nothing, as the runner does.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docex_ops import audit_trail
from docex_ops.migrate.tenant import TenantResult, TenantStep, describe_error

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.runs import RunStore

PATH = "alembic"  # the audit line's path: which code migrated the tenant
_RELATIVE = re.compile(r"[-+:@]")  # "-1", "base:head", "heads@2": not a run's target


@dataclass
class TenantWatch:
    """What Alembic did to one tenant: its revision before, the steps it applied."""

    tenant_id: str
    location: str
    from_rev: str | None = None
    applied: list[Any] = field(default_factory=list)  # alembic MigrationInfo

    def before(self, revision: str | None) -> None:
        self.from_rev = revision

    def on_version_apply(self, *, step: Any, **_: Any) -> None:
        """Alembic's ``on_version_apply`` hook: called once per step it ran."""
        self.applied.append(step)

    @property
    def action(self) -> str:
        if all(s.is_stamp for s in self.applied):
            return "stamp"
        return "upgrade" if self.applied[-1].is_upgrade else "downgrade"

    @property
    def to_rev(self) -> str | None:
        last = self.applied[-1]
        ids = last.destination_revision_ids
        return ids[0] if ids else None


class PlainAlembicRun:
    """Records one plain ``alembic`` command: started at the first tenant it changes
    (every tenant it visits listed), one result per tenant, finished at the end."""

    def __init__(self, manager: TenantDatabaseManager, cmd_opts: Any,
                 tenants: list[str]) -> None:
        self.manager = manager
        self.requested = _requested_revision(cmd_opts)
        command = getattr(cmd_opts, "cmd", None)
        name = getattr(command[0], "__name__", "") if command else ""
        # What a failed tenant was doing when no step had completed yet.
        self.command = name if name in ("upgrade", "downgrade", "stamp") else "upgrade"
        self.tenants = tenants
        self.actor = os.environ.get("DOCEX_OPS_ACTOR") or audit_trail.current_operator()
        self.store: RunStore | None = None
        self.run_id: str | None = None
        self.failed = False
        self._unchanged: list[TenantResult] = []  # visited before the run was started

    @contextmanager
    def tenant(self, tenant_id: str, location: str) -> Iterator[TenantWatch]:
        """Wraps one tenant's transaction: its outcome is recorded after the commit (or
        the rollback, and the error is raised on)."""
        watch = TenantWatch(tenant_id, location)
        started = time.perf_counter()
        try:
            yield watch
        except Exception as exc:
            self._failed(watch, time.perf_counter() - started, exc)
            raise
        seconds = time.perf_counter() - started
        if not watch.applied:
            self._unchanged_tenant(TenantResult(tenant_id, watch.from_rev, watch.from_rev,
                                                "skipped", seconds))
            return
        self._record(watch, TenantResult(tenant_id, watch.from_rev, watch.to_rev, "done",
                                         seconds, path=PATH))

    def finish(self) -> None:
        if self.store is not None and self.run_id is not None:
            self.store.finish(self.run_id, "failed" if self.failed else "done")

    def _failed(self, watch: TenantWatch, seconds: float, exc: Exception) -> None:
        self.failed = True
        target = watch.to_rev if watch.applied else self.requested
        self._record(watch, TenantResult(watch.tenant_id, watch.from_rev, watch.from_rev,
                                         "failed", seconds, error=describe_error(exc),
                                         path=PATH), target)
        self.finish()

    def _unchanged_tenant(self, result: TenantResult) -> None:
        if self.store is None:
            self._unchanged.append(result)
        else:
            self._store_only(result)

    def _record(self, watch: TenantWatch, result: TenantResult,
                target: str | None = None) -> None:
        from docex_ops.migrate.runner import record_result

        action = watch.action if watch.applied else self.command
        target = target if target is not None else result.to_rev
        if self.store is None:
            self._start(action, target)
        assert self.store is not None and self.run_id is not None
        step = TenantStep(watch.tenant_id, watch.location, watch.from_rev, target, action)
        record_result(self.store, self.run_id, step, result, actor=self.actor)

    def _start(self, action: str, resolved: str | None) -> None:
        from docex_ops.migrate.runner import run_store

        self.store = run_store(self.manager)
        wanted = self.requested if self.requested and not _RELATIVE.search(
            self.requested) else resolved
        steps = [TenantStep(t, "", None, resolved, action) for t in self.tenants]
        self.run_id = self.store.start(action, wanted or "base", self.actor, steps,
                                       {"via": PATH})
        for result in self._unchanged:
            self._store_only(result)
        self._unchanged.clear()

    def _store_only(self, result: TenantResult) -> None:
        assert self.store is not None and self.run_id is not None
        self.store.record(self.run_id, result)


def _requested_revision(cmd_opts: Any) -> str | None:
    """The revision the ``alembic`` command line asked for (None: not a migration)."""
    revision = getattr(cmd_opts, "revision", None)
    if revision is None:
        revisions = getattr(cmd_opts, "revisions", None) or [None]
        revision = revisions[0]
    return str(revision) if revision is not None else None
