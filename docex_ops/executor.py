"""Run one function per tenant, serially or on N worker threads, with a failure policy.

The shape of django-tenants' migration executors: a base class that owns the
policy (when to stop starting new tenants) and two small executors.
Each task is independent (one tenant, one transaction), so a worker thread
per connection is enough: the work is on the database side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Outcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def tenant_id(self) -> str: ...


R = TypeVar("R", bound=Outcome)


@dataclass(frozen=True)
class FailurePolicy:
    """When to stop starting new tasks. Tasks already running always finish."""

    continue_on_error: bool = False
    max_failures: int | None = None

    def should_stop(self, failures: int) -> bool:
        if self.max_failures is not None:
            return failures >= self.max_failures
        return failures > 0 and not self.continue_on_error


@dataclass(frozen=True)
class ProgressTick:
    """One task finished: how many of how many, which tenant (an archive's tenant; for
    verify-isolation, the check), and how it ended (a progress bar shows the current
    tenant; a summary counts failures).
    ``tenant`` None: nothing finished, the walk is starting and ``total`` is its size."""

    done: int
    total: int
    tenant: str | None = None
    ok: bool = True


ProgressFn = Callable[[ProgressTick], None]


def shifted(progress: ProgressFn | None, offset: int, total: int) -> ProgressFn | None:
    """``progress`` for one part of a larger walk (a migration wave): counts continue
    from ``offset`` and the total is the whole walk's."""
    if progress is None:
        return None
    report = progress

    def tick(t: ProgressTick) -> None:
        report(ProgressTick(offset + t.done, total, t.tenant, t.ok))
    return tick


class Executor(Generic[T, R]):
    """Runs ``task`` over items; returns the results of the tasks that ran, in item order."""

    def __init__(self, task: Callable[[T], R], policy: FailurePolicy | None = None,
                 progress: ProgressFn | None = None) -> None:
        self.task = task
        self.policy = policy or FailurePolicy()
        self.progress = progress
        self._failures = 0
        self._done = 0
        self._lock = threading.Lock()

    def run(self, items: Sequence[T]) -> list[R]:
        raise NotImplementedError

    def _announce(self, total: int) -> None:
        if self.progress:
            self.progress(ProgressTick(0, total))

    @property
    def stopped(self) -> bool:
        with self._lock:
            return self.policy.should_stop(self._failures)

    def _record(self, result: R, total: int) -> None:
        with self._lock:
            self._done += 1
            if not result.ok:
                self._failures += 1
            done = self._done
        if self.progress:
            self.progress(ProgressTick(done, total, result.tenant_id, result.ok))


class SerialExecutor(Executor[T, R]):
    def run(self, items: Sequence[T]) -> list[R]:
        self._announce(len(items))
        results = []
        for item in items:
            if self.stopped:
                break
            result = self.task(item)
            self._record(result, len(items))
            results.append(result)
        return results


class ThreadExecutor(Executor[T, R]):
    def __init__(self, task: Callable[[T], R], jobs: int, policy: FailurePolicy | None = None,
                 progress: ProgressFn | None = None) -> None:
        super().__init__(task, policy, progress)
        self.jobs = jobs

    def run(self, items: Sequence[T]) -> list[R]:
        results: dict[int, R] = {}
        pending: dict[Future[R], int] = {}
        queue = iter(enumerate(items))
        self._announce(len(items))
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="docex-ops") as pool:
            while True:
                while len(pending) < self.jobs and not self.stopped:
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    pending[pool.submit(self.task, nxt[1])] = nxt[0]
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    results[index] = future.result()
                    self._record(results[index], len(items))
        return [results[i] for i in sorted(results)]


def make_executor(task: Callable[[T], R], jobs: int, policy: FailurePolicy | None = None,
                  progress: ProgressFn | None = None) -> Executor[T, R]:
    if jobs <= 1:
        return SerialExecutor(task, policy, progress)
    return ThreadExecutor(task, jobs, policy, progress)
