"""Scratch objects: what an operation makes beside the tenants and removes when done
(restore copies, restore checks, split scratch and reference data, partial archives).

Names carry a mark no tenant name can have, so no template can make a tenant of
one and discovery never lists one as a tenant:

- PostgreSQL schemas start with ``docex$`` (``$`` is never in a tenant id or a
  template's fixed text, see ``tenancy.check_schema_name``);
- files and folders start with ``.docex-`` (a tenant id cannot start with ``.``).

Holding: the operation that makes a scratch object holds it from before it
exists until it is gone, and ``docex-ops cleanup`` removes only what nobody
holds. PostgreSQL: a session advisory lock on the name, on a connection the
operation keeps open (the server releases it if the process dies). Files and
folders: an ``flock`` on the object itself (the kernel releases it likewise).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from docex_ops.backends.pg_sql import ADVISORY_NAMESPACE

PG_MARK = "docex$"
FILE_MARK = ".docex-"
PARTIAL_SUFFIX = ".partial"
SIDECARS = ("-wal", "-shm", "-journal")  # a scratch database's files beside it
SCRATCH_NAMESPACE = ADVISORY_NAMESPACE + 2  # first key of the advisory lock holding a name


def new_schema_name(purpose: str) -> str:
    """``docex$<purpose>_<16 hex>``: a fresh scratch schema name (<= 63 bytes)."""
    return f"{PG_MARK}{purpose}_{uuid.uuid4().hex[:16]}"


def is_scratch_schema(name: str) -> bool:
    return name.startswith(PG_MARK)


def new_file_name(purpose: str, suffix: str = "") -> str:
    """``.docex-<purpose>-<16 hex><suffix>``: a fresh scratch file or folder name."""
    return f"{FILE_MARK}{purpose}-{uuid.uuid4().hex[:16]}{suffix}"


def is_scratch_file(name: str) -> bool:
    return name.startswith(FILE_MARK)


# -- PostgreSQL ------------------------------------------------------------------------


def _lock_args(name: str) -> dict[str, object]:
    return {"ns": SCRATCH_NAMESPACE, "name": name}


@contextmanager
def hold_new_schema(engine: Engine, purpose: str) -> Iterator[str]:
    """A fresh scratch schema name, held for the block (the caller creates the schema
    inside it, and drops it before leaving)."""
    name = new_schema_name(purpose)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(%(ns)s, hashtext(%(name)s))",
                             _lock_args(name))
        conn.commit()
        try:
            yield name
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%(ns)s, hashtext(%(name)s))",
                                 _lock_args(name))
            conn.commit()


def try_claim_schema(conn: Connection, name: str) -> bool:
    """Take the hold of a scratch schema for ``conn``'s session if nobody has it (a
    cleanup then drops it and releases with ``release_schema``)."""
    return bool(conn.exec_driver_sql(
        "SELECT pg_try_advisory_lock(%(ns)s, hashtext(%(name)s))", _lock_args(name)).scalar())


def release_schema(conn: Connection, name: str) -> None:
    conn.exec_driver_sql("SELECT pg_advisory_unlock(%(ns)s, hashtext(%(name)s))",
                         _lock_args(name))


# -- files and folders -------------------------------------------------------------------


@contextmanager
def hold_new_file(folder: Path, purpose: str, suffix: str = "") -> Iterator[Path]:
    """A fresh, empty scratch file in ``folder``, created exclusively and held for the
    block; removed at the end if the caller left it there."""
    path = folder / new_file_name(purpose, suffix)
    with _held(path, os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o640)):
        yield path


@contextmanager
def hold_new_folder(parent: Path, purpose: str) -> Iterator[Path]:
    """A fresh scratch folder in ``parent``, held for the block and removed with its
    contents at the end."""
    path = parent / new_file_name(purpose)
    path.mkdir(mode=0o750)
    with _held(path, os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)):
        yield path


@contextmanager
def _held(path: Path, fd: int) -> Iterator[None]:
    """Hold the just-created ``path`` (open as ``fd``) shared for the block, then remove it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        _still_mine(fd, path)
        yield
    finally:
        _remove(path)
        os.close(fd)


@contextmanager
def claimed(path: Path) -> Iterator[bool]:
    """Whether nobody holds the scratch file or folder ``path``; while True, nobody
    can take it either (a cleanup removes it inside the block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if path.is_dir()
                                                           else 0))
    except OSError:  # gone meanwhile, or a link: not ours to judge here
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _still_mine(fd: int, path: Path) -> None:
    """Between creating an object and locking it a cleanup could remove it (it looked
    unheld for that instant): then fail now, before anything is written to it."""
    st, now = os.fstat(fd), None
    with suppress(FileNotFoundError):
        now = os.lstat(path)
    if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        raise RuntimeError(f"scratch object {path} was removed by a concurrent "
                           "`docex-ops cleanup` as it was made; rerun the command")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        for suffix in ("", *SIDECARS):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- leftovers: what a killed operation left, found and removed by `docex-ops cleanup` ------


@dataclass(frozen=True)
class Leftover:
    """A scratch object that exists now: held by a running operation, or left behind."""

    kind: str       # schema | role | file | folder | link
    name: str       # schema or role name; the path of a file, folder or link
    where: str      # the server it is on, or the folder it was found in
    held: bool      # a running operation holds it: never removed

    @property
    def purpose(self) -> str:
        """What made it (restore, split, reference, partial, ...), from its name."""
        base = Path(self.name).name
        if base.startswith(FILE_MARK):
            return base[len(FILE_MARK):].split("-", 1)[0]
        if base.startswith(PG_MARK):
            return base[len(PG_MARK):].rsplit("_", 1)[0]
        return "partial" if base.endswith(PARTIAL_SUFFIX) else "?"


def is_leftover_name(name: str, backups: bool = False) -> bool:
    """A scratch mark; in backup folders also an older release's ``.<archive>.partial``."""
    return is_scratch_file(name) or (backups and name.startswith(".")
                                     and name.endswith(PARTIAL_SUFFIX))


def find_files(folder: Path, depth: int = 0, backups: bool = False) -> list[Leftover]:
    """Marked files, folders and links in ``folder`` and its subfolders down to ``depth``
    levels (never followed through a link, never into a marked folder)."""
    found: list[Leftover] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return found
    marked = {e.name for e in entries if is_leftover_name(e.name, backups)}
    for entry in entries:
        if entry.name in marked:
            if any(entry.name.endswith(side) and entry.name[:-len(side)] in marked
                   for side in SIDECARS):
                continue  # a scratch database's journal: removed with it
            path = Path(entry.path)
            kind = ("link" if entry.is_symlink() else
                    "folder" if entry.is_dir(follow_symlinks=False) else "file")
            found.append(Leftover(kind, str(path), str(folder), kind != "link" and is_held(path)))
        elif depth > 0 and entry.is_dir(follow_symlinks=False):
            found.extend(find_files(Path(entry.path), depth - 1, backups))
    return found


def is_held(path: Path) -> bool:
    with claimed(path) as free:
        return not free


def remove_file(leftover: Leftover) -> bool:
    """Remove a marked file, folder or link nobody holds; False when held."""
    path = Path(leftover.name)
    if not os.path.lexists(path):  # removed meanwhile (by its holder, or with its file)
        return True
    if leftover.kind == "link":  # planted, or a scratch name made a link: the link only
        path.unlink(missing_ok=True)
        return True
    with claimed(path) as free:
        if not free:
            return False
        _remove(path)
    return True
