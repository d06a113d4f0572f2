"""Helpers for the safety-guard tests: what the world outside a tenant looks like, a CLI
that records its audit trail, and a second process that writes a tenant on cue."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import pg_admin_connect
from docs_support import write_config
from json_support import json_data

from docex_ops.cli import main
from docex_ops.config.settings import Settings


@dataclasses.dataclass
class World:
    """One test's configuration: settings (with an audit file), its YAML, and a CLI."""

    settings: Settings
    config: Path
    audit_file: Path

    @property
    def kind(self) -> str:
        return self.settings.db_type

    def location(self, tenant_id: str) -> str:
        if self.kind == "postgresql":
            return self.settings.postgres.schema_template.format(tenant_id=tenant_id)
        return self.settings.sqlite.path_template.format(tenant_id=tenant_id)

    def cli(self, *args: str) -> tuple[int, str]:
        """(exit code, stdout and stderr together)."""
        result = CliRunner().invoke(main, ["--config", str(self.config), *args])
        return result.exit_code, result.output

    def cli_json(self, *args: str) -> tuple[int, Any, str]:
        """(exit code, the envelope's data checked against its schema, stderr)."""
        result = CliRunner().invoke(main, ["--config", str(self.config), "--format", "json",
                                           *args])
        return result.exit_code, json_data(result.stdout), result.stderr

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return subprocess.Popen([sys.executable, "-m", "docex_ops.cli", "--config",
                                 str(self.config), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)

    def audit(self, action: str) -> list[dict[str, Any]]:
        if not self.audit_file.exists():
            return []
        lines = [json.loads(line) for line in self.audit_file.read_text().splitlines()]
        return [line for line in lines if line["action"] == action]

    # -- what outside the tenant looks like --------------------------------------------------

    def snapshot(self, *exclude: str) -> dict[str, Any]:
        """Every schema of the database (tables, columns, row counts) or every file under
        the storage root (sha256), except the tenants named and docex-ops' own records."""
        if self.kind == "postgresql":
            prefix = self.settings.postgres.schema_template.split("{tenant_id}", 1)[0]
            return pg_snapshot(self.settings.postgres.database,
                               {self.location(t) for t in exclude}
                               | {self.settings.postgres.control_schema}, count=prefix)
        root = self.settings.sqlite.storage_root
        skip = {Path(self.location(t)).parent for t in exclude}
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()
                and not any(s == p.parent or s in p.parents for s in skip)
                and p.name != "_docex_ops.db" and not p.name.endswith(".lock")}

    def tenant_rows(self, tenant_id: str) -> dict[str, int]:
        """Rows per table of one tenant, read from outside docex-ops."""
        if self.kind == "postgresql":
            schema = self.location(tenant_id)
            return {t: n for (_, t), (_, n) in pg_snapshot(
                self.settings.postgres.database, set(), only=schema, count=schema).items()}
        import sqlite3
        conn = sqlite3.connect(f"file:{self.location(tenant_id)}?mode=ro", uri=True)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE "
                                                "type = 'table' AND name NOT LIKE 'sqlite_%'")]
            return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        finally:
            conn.close()

    def sql(self, tenant_id: str, *statements: str) -> None:
        """Run statements in the tenant (as an application would), committed."""
        if self.kind == "postgresql":
            conn = pg_admin_connect(self.settings.postgres.database)
            with conn.cursor() as cur:
                cur.execute(f'SET search_path TO "{self.location(tenant_id)}"')
                for statement in statements:
                    cur.execute(statement)
            conn.close()
            return
        import sqlite3
        path = Path(self.location(tenant_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
        for statement in statements:
            conn.execute(statement)
        conn.close()


def make_world(settings: Settings, tmp_path: Path) -> World:
    audit = tmp_path / "audit.jsonl"
    settings = dataclasses.replace(settings, audit_file=audit,
                                   documents_root=tmp_path / "documents")
    return World(settings, write_config(settings, tmp_path / "config.yaml"), audit)


_TEST_TENANT = re.compile(r"(t|ctl_t)[0-9a-f]{6}_?")  # conftest's schema_prefix
_PG_TABLES_SQL = """
SELECT n.nspname, c.relname, c.relkind,
       string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                  ORDER BY a.attnum)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
 GROUP BY 1, 2, 3
"""


def pg_snapshot(database: str, exclude: set[str], only: str | None = None, count: str = ""
                ) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(schema, table) -> (columns with types, rows) for every table and view of the
    database. Rows are counted in the schemas starting with ``count`` (the test's own
    tenants) and in every schema that is no test's tenant (``public``, split sources,
    scratch schemas); the tenants earlier tests of this worker left behind (thousands of
    tables) are compared by their catalog: what a cascade does (drop a column, a view, a
    constraint, a table) shows there."""
    conn = pg_admin_connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(_PG_TABLES_SQL)
            found = [r for r in cur.fetchall() if r[0] not in exclude
                     and (only is None or r[0] == only)]
            counted = [r for r in found if r[2] in ("r", "m")
                       and (r[0].startswith(count) or not _TEST_TENANT.match(r[0]))]
            counts: dict[int, int] = {}
            for start in range(0, len(counted), 200):  # a transaction each: few locks
                cur.execute(" UNION ALL ".join(
                    f"SELECT {i}, count(*) FROM \"{s}\".\"{t}\"" for i, (s, t, _, _)
                    in enumerate(counted) if start <= i < start + 200))
                counts.update(dict(cur.fetchall()))
            rows = {(s, t): counts[i] for i, (s, t, _, _) in enumerate(counted)}
        return {(s, t): (f"{kind}: {cols}", rows.get((s, t))) for s, t, kind, cols in found}
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None = None,
             timeout: float = 60) -> None:
    """Poll until ``condition`` holds (a synchronisation point, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended before {what}: {out}{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def restore_waits_on_a_lock(database: str) -> bool:
    """Whether a docex-ops restore's connection is waiting for a lock right now."""
    conn = pg_admin_connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE NOT l.granted AND a.application_name = 'docex-ops-backup'")
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


# A second process that provisions (or opens) a tenant and writes it in one transaction,
# then commits when told to on stdin: it holds the tenant as an application would.
_WRITER = textwrap.dedent("""
    import sqlite3, sys
    from docex_ops.config.settings import load_settings
    config, tenant = sys.argv[1], sys.argv[2]
    settings = load_settings(config)
    rows = [
        "INSERT INTO docbasket (id, name, storage_config, status, created_at, updated_at) "
        "VALUES ('bas_late', 'written during the restore', '{}', 'active', "
        "'2026-01-01', '2026-01-01')",
        "CREATE TABLE orders (id integer PRIMARY KEY, total integer)",
        "INSERT INTO orders VALUES (1, 10), (2, 20)",
    ]
    if settings.db_type == "postgresql":
        from docex_ops.backends.postgres import PostgresBackend
        from docex_ops.schema.ddl import head_ddl, version_table_ddl
        from docex_ops.migrate.scripts import head_revision
        backend = PostgresBackend(settings)
        with backend.admin_engine.connect() as conn:
            transaction = conn.begin()
            # docex-ops' own provisioning, in this process' open transaction
            assert backend.create_in(conn, tenant, head_ddl("postgresql")
                                     + version_table_ddl(head_revision()))
            for statement in rows:
                conn.exec_driver_sql(statement)
            print("ready", flush=True)
            sys.stdin.readline()
            transaction.commit()
    else:
        path = settings.sqlite.path_template.format(tenant_id=tenant)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        for statement in rows:
            conn.execute(statement)
        print("ready", flush=True)
        sys.stdin.readline()
        conn.execute("COMMIT")
    print("committed", flush=True)
""")


def start_writer(world: World, tenant_id: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(world.config), tenant_id],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise AssertionError(f"writer failed: {line}{proc.communicate()[1]}")
    return proc


def commit_writer(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "committed" in out, err
