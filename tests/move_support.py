"""Helpers shared by the move tests: seeding a tenant, reading a server from outside,
a writer thread that counts acknowledged writes and the pause it saw."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from conftest import server_connect
from sqlalchemy import insert

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket
from docex_ops.topology.several import SeveralServers


class Crash(BaseException):
    """Not an Exception: nothing in the move catches it, as if the process died here."""


def basket(name: str) -> dict[str, Any]:
    import datetime as dt

    now = dt.datetime(2026, 1, 1)
    return {"id": f"bas_{uuid.uuid4().hex}", "name": name, "storage_config": {},
            "status": "active", "created_at": now, "updated_at": now}


def fleet_of(manager: TenantDatabaseManager) -> SeveralServers:
    assert isinstance(manager.topology, SeveralServers)
    return manager.topology


def names_on(manager: TenantDatabaseManager, server: str, schema: str) -> list[str] | None:
    conn = server_connect(manager.settings, server)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f'"{schema}".docbasket',))
        if cur.fetchone()[0] is None:
            conn.close()
            return None
        cur.execute(f'SELECT name FROM "{schema}".docbasket')
        names = [r[0] for r in cur.fetchall()]
    conn.close()
    return names


def seed(manager: TenantDatabaseManager, tenant_id: str, server: str, rows: int) -> None:
    fleet_of(manager).reserve(tenant_id, server)
    with manager.tenant_transaction(tenant_id) as session:
        session.execute(insert(docbasket), [basket(f"seed-{n}") for n in range(rows)])


class Writer(threading.Thread):
    """Writes baskets through the manager until stopped; retries a write until acknowledged."""

    def __init__(self, manager: TenantDatabaseManager, tenant_id: str) -> None:
        super().__init__(daemon=True)
        self.manager, self.tenant_id = manager, tenant_id
        self.acked: list[str] = []
        self.errors = 0
        self.longest_pause = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        last_ack = time.perf_counter()
        n = 0
        while not self.stop.is_set():
            name = f"w-{n}"
            try:
                with self.manager.tenant_transaction(self.tenant_id) as session:
                    session.execute(insert(docbasket).values(basket(name)))
            except RuntimeError:
                self.errors += 1
                time.sleep(0.01)
                continue
            now = time.perf_counter()
            self.longest_pause = max(self.longest_pause, now - last_ack)
            last_ack = now
            self.acked.append(name)
            n += 1
            time.sleep(0.002)


def assert_no_replication_left(manager: TenantDatabaseManager, servers: tuple[str, ...]) -> None:
    """No publication, slot or subscription of a move is left on any of ``servers``."""
    for server in servers:
        conn = server_connect(manager.settings, server)
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM pg_publication WHERE pubname LIKE "
                        "'docex_move_%%') + (SELECT count(*) FROM pg_replication_slots) + "
                        "(SELECT count(*) FROM pg_subscription)")
            assert cur.fetchone()[0] == 0
        conn.close()
