"""A real PgBouncer in front of the test PostgreSQL: own port, generated ini, stopped after.

PgBouncer refuses to run as root, so as root it is started with ``-u postgres`` (its
files are made readable for that user). Missing binaries fail with a clear message.
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
from typing import Any

import psycopg2
from conftest import PG_HOST, PG_PORT, PG_USER

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass
class Bouncer:
    host: str
    port: int
    root: Path
    process: subprocess.Popen[bytes]

    def admin(self) -> Any:
        """A connection to the admin console (autocommit: it takes no transactions)."""
        conn = psycopg2.connect(host=self.host, port=self.port, user=PG_USER,
                                dbname="pgbouncer")
        conn.autocommit = True
        return conn

    def show(self, what: str) -> list[dict[str, Any]]:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"SHOW {what}")
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_bouncer(pool_mode: str = "transaction", server: tuple[str, int] = (PG_HOST, PG_PORT),
                  port: int | None = None, **extra: Any) -> Bouncer:
    """PgBouncer in front of ``server`` (the test PostgreSQL) on ``port`` (default: a free
    one); ``extra``: ini settings."""
    if not os.access(BINARY, os.X_OK):
        raise RuntimeError(f"{BINARY} not found: run scripts/ensure-pgbouncer.sh")
    root = Path(tempfile.mkdtemp(prefix="docex-pgbouncer-"))
    root.chmod(0o777)
    port = port or free_port()
    settings = {
        "listen_addr": "127.0.0.1", "listen_port": port, "unix_socket_dir": "",
        "auth_type": "trust", "auth_file": root / "userlist.txt",
        "pool_mode": pool_mode, "default_pool_size": 2, "max_client_conn": 2000,
        "admin_users": PG_USER, "stats_users": PG_USER,
        "logfile": root / "pgbouncer.log", "pidfile": root / "pgbouncer.pid",
        "server_reset_query": "DISCARD ALL" if pool_mode == "session" else "",
    } | extra
    (root / "userlist.txt").write_text(f'"{PG_USER}" ""\n')
    lines = ["[databases]", f"* = host={server[0]} port={server[1]}", "[pgbouncer]"]
    lines += [f"{k} = {v}" for k, v in settings.items()]
    ini = root / "pgbouncer.ini"
    ini.write_text("\n".join(lines) + "\n")
    for path in root.iterdir():
        path.chmod(0o666)
    args = [BINARY] + (["-u", "postgres"] if os.geteuid() == 0 else []) + [str(ini)]
    # PgBouncer writes its log to stderr as well as to logfile: a pipe nobody reads fills
    # after about 400 lines (64 kB), and then PgBouncer blocks in write() and stops
    # serving every client at once. A file never fills.
    with open(root / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
    bouncer = Bouncer("127.0.0.1", port, root, process)
    _wait_ready(bouncer)
    return bouncer


def _wait_ready(bouncer: Bouncer) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if bouncer.process.poll() is not None:
            logs = [bouncer.root / "pgbouncer.log", bouncer.root / "stderr.log"]
            raise RuntimeError("pgbouncer exited: " + "".join(
                log.read_text() for log in logs if log.exists()))
        try:
            bouncer.admin().close()
            return
        except psycopg2.OperationalError:
            time.sleep(0.1)
    stop_bouncer(bouncer)
    raise RuntimeError(f"pgbouncer on port {bouncer.port} did not come up")


def stop_bouncer(bouncer: Bouncer) -> None:
    bouncer.process.terminate()
    try:
        bouncer.process.wait(10)
    except subprocess.TimeoutExpired:
        bouncer.process.kill()
        bouncer.process.wait()
    shutil.rmtree(bouncer.root, ignore_errors=True)


def pooled_mapping(pg_database: str, bouncer: Bouncer, schema_prefix: str,
                   mode: str = "pgbouncer_transaction", **database: Any) -> dict[str, Any]:
    """A DocEX configuration whose tenants go through ``bouncer``, operators direct."""
    return {
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "postgresql", **database, "postgres": {
            "host": bouncer.host, "port": bouncer.port, "user": PG_USER,
            "database": pg_database, "pooler": mode,
            "direct": {"host": PG_HOST, "port": PG_PORT},
            "schema_template": schema_prefix + "{tenant_id}",
            "control_schema": "ctl_" + schema_prefix.rstrip("_")}},
    }
