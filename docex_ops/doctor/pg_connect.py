"""Connectivity: every server answers; behind a pooler, BOTH paths answer (the pooler
tenants use, and the direct one operator work needs: pg_dump, locks, replication)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import FAIL, PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.config.settings import PostgresSettings
    from docex_ops.doctor.context import DoctorContext

CONNECT_TIMEOUT_S = 5  # a preflight must not hang on a firewalled port


def probe(pg: PostgresSettings) -> str:
    """The server's version through ``pg``'s endpoint; the driver's error if it fails."""
    import psycopg2  # type: ignore[import-untyped]  # no stubs in the required stack

    conn = psycopg2.connect(**pg.connect_args("docex-ops-doctor"),
                            connect_timeout=CONNECT_TIMEOUT_S)
    try:
        conn.autocommit = True  # one statement, nothing a transaction pooler must hold
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version')")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


def one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_connectivity(ctx: DoctorContext) -> list[DoctorRow]:
    from dataclasses import replace

    rows = []
    pooler = ctx.manager.settings.pooler
    # Two paths whenever tenants connect elsewhere than operators (a pooler mode, or a
    # direct endpoint of its own).
    two_paths = pooler.per_transaction or pooler.application is not None
    for name, backend in ctx.manager.servers.items():
        direct = backend.settings.postgres
        path = "direct path " if two_paths else ""
        row = _probe_row(f"{name} {path}{direct.host}:{direct.port}", direct)
        rows.append(row)
        if row.status == PASS:
            ctx.reachable[name] = backend
        else:
            ctx.unreachable.append(name)
        if not two_paths:
            continue
        if pooler.application is None:
            rows.append(DoctorRow("connectivity", f"{name} pooler path", WARN,
                                  f"database.postgres.pooler is {pooler.mode} but no "
                                  "database.postgres.direct is set: operator work (pg_dump, "
                                  "locks) goes through the pooler; set direct: {host, port}"))
            continue
        app = replace(direct, host=pooler.application.host, port=pooler.application.port)
        rows.append(_probe_row(f"{name} pooler path {app.host}:{app.port}", app,
                               f"{pooler.mode} to " if pooler.per_transaction else ""))
    return rows


def _probe_row(target: str, pg: PostgresSettings, via: str = "") -> DoctorRow:
    try:
        version = probe(pg)
    except Exception as exc:  # noqa: BLE001 - every failure is this row's FAIL
        return DoctorRow("connectivity", target, FAIL,
                         f"cannot connect to {pg.describe()}: {one_line(exc)}")
    return DoctorRow("connectivity", target, PASS, f"{via}PostgreSQL {version}")
