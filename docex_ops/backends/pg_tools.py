"""Finding and running PostgreSQL's client tools (pg_dump, pg_restore, psql)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from docex_ops.config.settings import PostgresSettings


class ArchiveToolError(RuntimeError):
    """A database tool (pg_dump, pg_restore, psql) is missing, too old or failed."""

_VERSION_RE = re.compile(rb"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTool:
    name: str
    path: str
    version: str
    major: int


def find_tool(name: str, pg_bin: str | None) -> PgTool:
    """``name`` from ``pg_bin`` or PATH, with its version; a clear error when absent."""
    if pg_bin:
        candidate = Path(pg_bin) / name
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise ArchiveToolError(f"{name} not found in --pg-bin {pg_bin}")
        path = str(candidate)
    else:
        found = shutil.which(name)
        if found is None:
            raise ArchiveToolError(
                f"{name} not found on PATH: install the PostgreSQL client tools matching "
                "the server (e.g. postgresql-client-15) or pass --pg-bin DIR")
        path = found
    out = subprocess.run([path, "--version"], capture_output=True, check=False).stdout
    match = _VERSION_RE.search(out)
    if match is None:
        raise ArchiveToolError(f"cannot read the version of {path}: {out[:100]!r}")
    return PgTool(name, path, out.decode(errors="replace").strip(), int(match.group(1)))


def require_can_dump(tool: PgTool, server_major: int, server_version: str) -> None:
    """pg_dump refuses servers newer than itself; say so before trying."""
    if tool.major < server_major:
        raise ArchiveToolError(
            f"{tool.path} is version {tool.major} but the server is {server_version}: "
            f"pg_dump must be at least the server's major version; install "
            f"postgresql-client-{server_major} and pass --pg-bin "
            f"/usr/lib/postgresql/{server_major}/bin")


def tool_env(pg: PostgresSettings, purpose: str) -> dict[str, str]:
    """Connection settings for a tool, through the environment: the password never
    appears on a command line."""
    env = dict(os.environ)
    env.update({"PGHOST": pg.host, "PGPORT": str(pg.port), "PGUSER": pg.user,
                "PGDATABASE": pg.database, "PGAPPNAME": f"docex-ops-{purpose}",
                "PGCONNECT_TIMEOUT": "30"})
    if pg.password is not None:
        env["PGPASSWORD"] = pg.password
    if pg.sslmode:
        env["PGSSLMODE"] = pg.sslmode
    return env


def run_tool(args: list[str], env: dict[str, str], what: str) -> bytes:
    """Run a tool to completion; its stderr becomes the error message on failure."""
    proc = subprocess.run(args, env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ArchiveToolError(f"{what} failed (exit {proc.returncode}): "
                               f"{last_lines(proc.stderr)}")
    return proc.stdout


def last_lines(stderr: bytes, keep: int = 3) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-keep:]) or "no message"
