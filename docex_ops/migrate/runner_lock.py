"""The migration runner's lock: one run at a time per set of control data.

Held for a whole ``migrate`` run, so two runs that would write the same run records
never interleave. Per kind: a session advisory lock on PostgreSQL (keyed by the
control schema, on the direct path: a pooler would hand the session to others),
an ``flock`` on a lock file beside the tenant files on SQLite.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, cast

from docex_ops.backends.base import Backend, TenantLockedError
from docex_ops.backends.registry import KindRegistry

if TYPE_CHECKING:
    from docex_ops.backends.postgres import PostgresBackend
    from docex_ops.backends.sqlite import SqliteBackend

RunnerLock = Callable[[Backend, bool], AbstractContextManager[None]]
RUNNER_LOCKS = KindRegistry[RunnerLock]("the migration runner lock", {
    "postgresql": "docex_ops.migrate.runner_lock:postgres_runner_lock",
    "sqlite": "docex_ops.migrate.runner_lock:sqlite_runner_lock",
})
SQLITE_LOCK_FILE = "_docex_ops.lock"


def runner_lock(backend: Backend, wait: bool) -> AbstractContextManager[None]:
    """Held for a whole migration run; TenantLockedError names the holder if taken
    (unless ``wait``)."""
    return RUNNER_LOCKS.for_kind(backend.kind)(backend, wait)


@contextmanager
def postgres_runner_lock(backend: Backend, wait: bool) -> Iterator[None]:
    from sqlalchemy import text

    from docex_ops.backends.pg_sql import RUNNER_NAMESPACE

    pg = cast("PostgresBackend", backend)
    key = {"ns": RUNNER_NAMESPACE, "s": pg.settings.postgres.control_schema}
    with pg.admin_engine.connect() as conn:
        if wait:
            conn.exec_driver_sql("SELECT pg_advisory_lock(%(ns)s, hashtext(%(s)s))", key)
        elif not conn.exec_driver_sql(
                "SELECT pg_try_advisory_lock(%(ns)s, hashtext(%(s)s))", key).scalar():
            holder = conn.execute(text(
                "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.classid = :ns "
                "AND l.objid = hashtext(:s)::oid AND l.granted"), key).first()
            who = (f"pid {holder[0]} ({holder[1] or 'no application_name'}"
                   f"{', ' + str(holder[2]) if holder[2] else ''}) since {holder[3]:%F %T}"
                   if holder else "another session")
            raise TenantLockedError(f"another migration run holds the runner lock: {who}; "
                                    "wait for it or rerun with --wait")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%(ns)s, hashtext(%(s)s))", key)
            conn.commit()


@contextmanager
def sqlite_runner_lock(backend: Backend, wait: bool) -> Iterator[None]:
    from docex_ops.backends.sqlite_connect import DIR_MODE, FILE_MODE
    from docex_ops.backends.sqlite_paths import TenantFileError

    root = cast("SqliteBackend", backend).paths.root
    root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path = root / SQLITE_LOCK_FILE
    # Never through a link: truncating it would truncate whatever it points at.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    with open(fd, "r+") as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise TenantFileError(f"{path} is not a plain file of its own "
                                  f"({st.st_nlink} links); remove it and rerun")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            holder = handle.read().strip() or "another process"
            raise TenantLockedError(f"another migration run holds {path}: {holder}; "
                                    "wait for it or rerun with --wait") from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
