"""Extra PostgreSQL clusters of the test run's own: initdb + pg_ctl on free ports.

initdb refuses to run as root, so when the tests run as root the clusters
are made and run by the ``postgres`` user (runuser). wal_level=logical, so
tenants can be moved with logical replication; fsync off and small buffers,
so a cluster starts in about a second.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("DOCEX_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
CLUSTER_USER = "postgres"

_SETTINGS = {
    "wal_level": "logical", "fsync": "off", "synchronous_commit": "off",
    "full_page_writes": "off", "shared_buffers": "16MB", "max_connections": "60",
    "max_wal_senders": "10", "max_replication_slots": "10",
    "max_logical_replication_workers": "8", "max_worker_processes": "16",
    "listen_addresses": "'127.0.0.1'", "unix_socket_directories": "''",
}


@dataclass
class Cluster:
    name: str
    port: int
    datadir: Path
    logfile: Path

    @property
    def host(self) -> str:
        return "127.0.0.1"


def _as_cluster_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", CLUSTER_USER, "--", *args]


def require_binaries() -> None:
    """Fail (never skip) with a clear message when the server binaries are missing."""
    missing = [b for b in ("initdb", "pg_ctl") if not (PG_BIN / b).is_file()]
    if missing:
        raise RuntimeError(f"the fleet tests start their own PostgreSQL clusters and need "
                           f"{', '.join(missing)} in {PG_BIN}: install postgresql-15 or set "
                           "$DOCEX_TEST_PG_BIN to the directory holding initdb and pg_ctl")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise RuntimeError("running as root: initdb must run as the postgres user, "
                           "and runuser is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cluster(name: str, root: Path, extra: dict[str, str] | None = None) -> Cluster:
    """A new cluster ``name`` under ``root``, with ``extra`` postgresql.conf settings."""
    datadir, logfile = root / name, root / f"{name}.log"
    subprocess.run(_as_cluster_user([str(PG_BIN / "initdb"), "-D", str(datadir), "-U",
                                     "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                                     "--locale=C"]),
                   check=True, capture_output=True)
    with (datadir / "postgresql.conf").open("a") as conf:
        for key, value in (_SETTINGS | (extra or {})).items():
            conf.write(f"{key} = {value}\n")
    for attempt in range(5):
        port = free_port()
        done = subprocess.run(_as_cluster_user([str(PG_BIN / "pg_ctl"), "-D", str(datadir),
                                                "-l", str(logfile), "-o", f"-p {port}", "-w",
                                                "-t", "60", "start"]),
                              capture_output=True, check=False)
        if done.returncode == 0:
            return Cluster(name, port, datadir, logfile)
        time.sleep(0.2 * (attempt + 1))  # the port was taken meanwhile: try another
    raise RuntimeError(f"cluster {name} did not start: {done.stderr.decode()[-500:]} "
                       f"{logfile.read_text()[-1000:] if logfile.exists() else ''}")


def stop_cluster(cluster: Cluster) -> None:
    subprocess.run(_as_cluster_user([str(PG_BIN / "pg_ctl"), "-D", str(cluster.datadir),
                                     "-m", "immediate", "-w", "stop"]),
                   capture_output=True, check=False)


def make_root() -> Path:
    """A temp directory the cluster user can write (pytest's own is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="docex-fleet-"))
    if os.geteuid() == 0:
        shutil.chown(root, CLUSTER_USER, CLUSTER_USER)
    return root
