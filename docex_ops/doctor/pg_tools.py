"""pg_dump and pg_restore on PATH, each at least every server's major version
(pg_dump refuses a server newer than itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.backends.pg_tools import ArchiveToolError, find_tool
from docex_ops.doctor.results import FAIL, PASS, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext


def check_tools(ctx: DoctorContext) -> list[DoctorRow]:
    servers = {}
    for name, backend in ctx.reachable_postgres.items():
        with backend.admin_engine.connect() as conn:
            number, text = conn.exec_driver_sql(
                "SELECT current_setting('server_version_num')::int / 10000, "
                "current_setting('server_version')").one()
            conn.rollback()
        servers[name] = (int(number), str(text))
    rows = []
    for tool_name in ("pg_dump", "pg_restore"):
        try:
            tool = find_tool(tool_name, None)
        except ArchiveToolError as exc:
            rows.append(DoctorRow("tools", tool_name, FAIL, str(exc)))
            continue
        for name, (major, text) in servers.items():
            ok = tool.major >= major
            rows.append(DoctorRow(
                "tools", f"{tool_name} vs {ctx.where(name)}", PASS if ok else FAIL,
                f"{tool.path} is {tool.major}, the server is {text}" + (
                    "" if ok else f": install postgresql-client-{major} and pass --pg-bin "
                                  f"/usr/lib/postgresql/{major}/bin")))
    return rows
