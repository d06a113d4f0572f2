"""A budget of open tenant connections per server, enforced through pool events.

The manager keeps one budget per database server (one in all on a single
server or SQLite). A budget counts physical connections (checked out *and* idle
in a pool) of every tenant engine on its server. A slot is taken in the
engine's ``do_connect`` hook, before the socket or file is opened, and given
back when the pool closes the connection (``close``, ``close_detached``), when
a reconnect fails half-way, or at the latest when the pool entry holding it is
garbage collected. The count is therefore exact whatever path SQLAlchemy
takes, and the hook is the only place a connection can be created, so the
limit cannot be crossed.

When the budget is full, the thread that needs a connection first asks the
manager to reclaim room (retire least-recently-used engines of the same server
whose connections are all idle), then waits for a slot; while anyone waits,
connections are closed instead of kept idle when they are checked in. After
``pool_timeout`` seconds it raises ``ConnectionBudgetExceeded``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect, Engine
    from sqlalchemy.pool import ConnectionPoolEntry


from docex_ops.backends.base import ServerLimits

# Connections left to everything that is not this process' tenant pools: the
# docex-ops worker pool (up to 8), psql sessions, monitoring, migrations.
DEFAULT_RESERVE = 10
_SLOT_KEY = "docex_ops_budget_slot"
# A waiter re-checks for reclaimable engines at least this often (seconds).
_RECHECK_INTERVAL = 0.25


def derive_budget(limits: ServerLimits, reserve: int = DEFAULT_RESERVE) -> int:
    """The default ``database.max_total_connections`` on PostgreSQL.

    ``max_connections - superuser_reserved_connections - reserved_connections
    - reserve`` (reserve 10), at least 1, for each server from its own settings. It
    assumes one application process per server: with N processes, configure about a
    1/N share explicitly (a configured value applies to each server).
    """
    return max(1, limits.available - reserve)


class ConnectionBudgetExceeded(RuntimeError):
    """No connection slot became free within ``pool_timeout``."""


@dataclass
class EngineTracker:
    """Budget bookkeeping of one tenant engine."""

    tenant_id: str
    open: int = 0          # physical connections of this engine counted in the budget
    retired: bool = False  # disposed by the manager: close connections on check-in
    last_checkin: float = field(default_factory=time.monotonic)


class _Slot:
    """One open connection's place in the budget, given back exactly once."""

    __slots__ = ("_budget", "tracker", "held")

    def __init__(self, budget: ConnectionBudget, tracker: EngineTracker) -> None:
        self._budget = budget
        self.tracker = tracker
        self.held = True

    def release(self) -> None:
        self._budget._release(self)

    def __del__(self) -> None:
        # Safety net: the pool entry holding this slot was dropped without a
        # close event (e.g. a connect hook failed after the connection opened).
        if self.held:
            with contextlib.suppress(Exception):  # at interpreter shutdown: nothing to count
                self.release()


class ConnectionBudget:
    """Counts open tenant connections and refuses to exceed ``limit`` (None: unbounded)."""

    def __init__(self, limit: int | None, timeout: float,
                 reclaim: Callable[[str], int], server: str | None = None) -> None:
        self._limit = limit
        self._server = server  # named in messages when there are several servers
        self._timeout = timeout
        self._reclaim = reclaim
        # Reentrant: a slot's __del__ may run while this thread holds the lock.
        self._cond = threading.Condition(threading.RLock())
        self._open = 0
        self._peak = 0
        self._waiting = 0
        self._timeouts = 0
        self._detached: dict[int, _Slot] = {}

    @property
    def limit(self) -> int | None:
        return self._limit

    def set_limit(self, limit: int | None) -> None:
        with self._cond:
            self._limit = limit
            self._cond.notify_all()

    @property
    def open(self) -> int:
        return self._open

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"limit": self._limit, "open": self._open, "peak": self._peak,
                    "waiting": self._waiting, "timeouts": self._timeouts}

    def reset_peak(self) -> None:
        with self._cond:
            self._peak = self._open

    # -- engines ---------------------------------------------------------------------

    def attach(self, engine: Engine, tenant_id: str) -> EngineTracker:
        """Count every connection ``engine`` opens; the listeners survive ``dispose()``."""
        from sqlalchemy import event

        tracker = EngineTracker(tenant_id)

        def do_connect(dialect: Dialect, record: ConnectionPoolEntry, cargs: Any,
                       cparams: Any) -> Any:
            slot = self._acquire(tracker)
            try:
                dbapi_connection = dialect.connect(*cargs, **cparams)
            except BaseException:
                slot.release()
                raise
            record.info[_SLOT_KEY] = slot
            return dbapi_connection

        def on_close(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
            # The pool fires this just *before* closing; close first (the pool's own
            # close after us is a no-op) so the slot is free only once the
            # connection really is gone.
            with contextlib.suppress(Exception):
                dbapi_connection.close()
            _release_from(record)

        def on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
            tracker.last_checkin = time.monotonic()
            if dbapi_connection is None:      # a reconnect failed after its slot was taken
                _release_from(record)
            elif tracker.retired or self._waiting:
                record.close()                # hand the slot over instead of idling on it

        def on_detach(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
            slot = record.info.pop(_SLOT_KEY, None)
            if slot is not None:
                with self._cond:
                    self._detached[id(dbapi_connection)] = slot

        def on_close_detached(dbapi_connection: Any) -> None:
            with self._cond:
                slot = self._detached.pop(id(dbapi_connection), None)
            if slot is not None:
                slot.release()

        event.listen(engine, "do_connect", do_connect)
        event.listen(engine, "close", on_close)
        event.listen(engine, "checkin", on_checkin)
        event.listen(engine, "detach", on_detach)
        event.listen(engine, "close_detached", on_close_detached)
        return tracker

    @staticmethod
    def retire(tracker: EngineTracker) -> None:
        """From now on the engine's connections are closed when checked in."""
        tracker.retired = True

    # -- slots -----------------------------------------------------------------------

    def _has_room(self) -> bool:
        return self._limit is None or self._open < self._limit

    def _take(self, tracker: EngineTracker) -> _Slot:
        self._open += 1
        tracker.open += 1
        self._peak = max(self._peak, self._open)
        return _Slot(self, tracker)

    def _acquire(self, tracker: EngineTracker) -> _Slot:
        with self._cond:
            if self._has_room() and not self._waiting:
                return self._take(tracker)
            self._waiting += 1
        deadline = time.monotonic() + self._timeout
        try:
            while True:
                freed = self._reclaim(tracker.tenant_id)
                with self._cond:
                    if self._has_room():
                        return self._take(tracker)
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._timeouts += 1
                        raise ConnectionBudgetExceeded(self._exhausted(tracker.tenant_id))
                    if not freed:
                        self._cond.wait(min(remaining, _RECHECK_INTERVAL))
        finally:
            with self._cond:
                self._waiting -= 1

    def _release(self, slot: _Slot) -> None:
        with self._cond:
            if not slot.held:
                return
            slot.held = False
            self._open -= 1
            slot.tracker.open -= 1
            self._cond.notify()

    def _exhausted(self, tenant_id: str) -> str:
        where = "" if self._server is None else f" on server {self._server!r}"
        return (f"tenant {tenant_id!r}: connection budget exhausted{where}: all "
                f"{self._limit} connections of database.max_total_connections are in use "
                f"and none became free within pool_timeout ({self._timeout:g}s); close "
                "sessions sooner, or raise database.max_total_connections if the server "
                "allows it (see `docex-ops pools report`)")


def _release_from(record: ConnectionPoolEntry) -> None:
    slot = record.info.pop(_SLOT_KEY, None)
    if slot is not None:
        slot.release()
