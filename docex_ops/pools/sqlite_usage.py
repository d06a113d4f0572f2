"""SQLite has no server to ask: who holds a tenant file open is read from /proc.

Only processes whose ``/proc/<pid>/fd`` this user may read are visible (all
of one's own, everyone's as root); the result says how many were not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
SIDECARS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class FileHolder:
    pid: int
    command: str


@dataclass
class OpenFileScan:
    holders: dict[str, list[FileHolder]] = field(default_factory=dict)  # by main file path
    supported: bool = True      # False: no /proc on this OS
    unreadable_processes: int = 0


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def scan_open_files(paths: Iterable[Path], proc: Path = PROC) -> OpenFileScan:
    """Which processes hold each of ``paths`` (or its -wal/-shm/-journal) open."""
    targets: dict[str, str] = {}
    for path in paths:
        main = str(path.resolve())
        for suffix in ("", *SIDECARS):
            targets[main + suffix] = main
    scan = OpenFileScan(holders={main: [] for main in set(targets.values())})
    if not proc.is_dir():
        scan.supported = False
        return scan
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except PermissionError:
            scan.unreadable_processes += 1
            continue
        except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
            continue  # exited meanwhile
        held = {targets[link] for link in _links(entry / "fd", fds) if link in targets}
        if held:
            holder = FileHolder(int(entry.name), _command(entry))
            for main in sorted(held):
                scan.holders[main].append(holder)
    return scan


def _links(fd_dir: Path, fds: list[str]) -> Iterable[str]:
    for fd in fds:
        try:
            yield os.readlink(fd_dir / fd)
        except OSError:
            continue


def _command(proc_entry: Path) -> str:
    try:
        return (proc_entry / "comm").read_text().strip()
    except OSError:
        return "?"
