"""The one place that lists the doctor's checks, per database kind, in run order.

Connectivity runs first: it records which servers answered, and the checks after it
look only at those (an unreachable server is one FAIL row, not one per check). Adding
a check is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from docex_ops.doctor import (
    citus_moves,
    leftovers,
    pg_budget,
    pg_connect,
    pg_privileges,
    pg_replication,
    pg_tools,
    revisions,
    schemas,
    sqlite_storage,
)
from docex_ops.doctor.context import DoctorContext
from docex_ops.doctor.results import DoctorRow

POSTGRESQL, SQLITE = "postgresql", "sqlite"
EVERY_KIND = (POSTGRESQL, SQLITE)


@dataclass(frozen=True)
class DoctorCheck:
    name: str
    kinds: tuple[str, ...]
    run: Callable[[DoctorContext], list[DoctorRow]]
    summary: str


CHECKS: tuple[DoctorCheck, ...] = (
    DoctorCheck("connectivity", (POSTGRESQL,), pg_connect.check_connectivity,
                "every server answers; behind a pooler both the pooler and the direct path"),
    DoctorCheck("connectivity", (SQLITE,), sqlite_storage.check_storage,
                "the storage root exists and is writable"),
    DoctorCheck("privileges", (POSTGRESQL,), pg_privileges.check_privileges,
                "CREATE on the database; every tenant object readable by pg_dump"),
    DoctorCheck("tools", (POSTGRESQL,), pg_tools.check_tools,
                "pg_dump and pg_restore at least each server's major version"),
    DoctorCheck("replication", (POSTGRESQL,), pg_replication.check_replication,
                "with several servers: wal_level logical, replication slots and senders, no "
                "inactive slot holding WAL"),
    DoctorCheck("citus moves", (POSTGRESQL,), citus_moves.check_citus_moves,
                "on Citus: every worker commits synchronously, so online moves from it "
                "are allowed"),
    DoctorCheck("connections", (POSTGRESQL,), pg_budget.check_budget,
                "tenants x pool within the budget and max_connections"),
    DoctorCheck("leftovers", EVERY_KIND, leftovers.check_leftovers,
                "no scratch object left by an interrupted operation"),
    DoctorCheck("revisions", EVERY_KIND, revisions.check_revisions,
                "every tenant at head, every tenant readable"),
    DoctorCheck("schemas", EVERY_KIND, schemas.check_schemas,
                "no unversioned or foreign schema among the tenants, no placement problem"),
)


def checks_for(kind: str) -> list[DoctorCheck]:
    return [c for c in CHECKS if kind in c.kinds]
