"""Helpers for the hostile-archive tests: environments, archives edited as an attacker
would, and snapshots of everything a restore must not touch."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from conftest import PG_HOST, PG_PORT, PG_USER, pg_admin_connect

from docex_ops.backup import create_backups
from docex_ops.backup.archivers import make_archiver
from docex_ops.cli import main
from docex_ops.manager.tenant_manager import TenantDatabaseManager


@dataclass
class Env:
    manager: TenantDatabaseManager
    config: Path
    tmp: Path

    @property
    def kind(self) -> str:
        return self.manager.backend.kind

    def run(self, *args: str, config: Path | None = None) -> tuple[int, str]:
        """(exit code, stdout and stderr); with --format json, stdout alone."""
        result = CliRunner().invoke(main, ["--config", str(config or self.config), *args])
        return result.exit_code, result.stdout if "json" in args else result.output

    def location(self, tenant_id: str) -> str:
        return self.manager.backend.location(tenant_id)

    def digest(self, tenant_id: str) -> dict[str, tuple[int, str]]:
        archiver = make_archiver(self.manager.backend)
        try:
            return {t: (d.rows, d.checksum)
                    for t, d in archiver.digest_tenant(tenant_id).items()}
        finally:
            archiver.dispose()

    def backup(self, tenant_id: str, dest: str = "bk") -> Path:
        self.manager.close_all_connections()
        (result,) = create_backups(self.manager, [tenant_id], self.tmp / dest)
        assert result.ok, result.error
        assert result.manifest is not None
        return result.manifest

    def with_key(self, key_file: Path) -> Path:
        """This environment's config with backup.signing_key_file set."""
        raw = yaml.safe_load(self.config.read_text())
        raw["backup"] = {"signing_key_file": str(key_file)}
        path = self.config.with_name(f"signed-{key_file.name}.yaml")
        path.write_text(yaml.safe_dump(raw))
        return path


def recompute(manifest_path: Path) -> None:
    """What someone who can write to the backup folder does after editing an archive."""
    data = json.loads(manifest_path.read_text())
    archive = manifest_path.parent / data["archive"]
    data["archive_sha256"] = hashlib.sha256(archive.read_bytes()).hexdigest()
    data["archive_size"] = archive.stat().st_size
    manifest_path.write_text(json.dumps(data))


def _tool(name: str, *args: str) -> None:
    done = subprocess.run([name, "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, *args],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def edit_pg_archive(manifest_path: Path, sql: str, schemas: list[str],
                    roles: tuple[str, ...] = ()) -> None:
    """The archive restored into a database of the attacker's, changed there by ``sql``,
    dumped again (``-n`` each of ``schemas``) over the original; sha256 recomputed."""
    data = json.loads(manifest_path.read_text())
    archive = manifest_path.parent / data["archive"]
    database = f"attacker_{uuid.uuid4().hex[:8]}"
    admin = pg_admin_connect()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    try:
        _tool("pg_restore", "-d", database, "--no-owner", str(archive))
        conn = pg_admin_connect(database)
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.close()
        _tool("pg_dump", "--format=custom", f"--file={archive}", *(
            arg for schema in schemas for arg in ("--schema", schema)), database)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            for role in roles:
                cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()
    recompute(manifest_path)


_PG_OBJECTS = r"""
SELECT 'schema', nspname, '', nspowner::regrole::text FROM pg_namespace
 WHERE nspname !~ '^(pg_|information_schema)'
UNION ALL
SELECT 'relation', n.nspname, c.relname, c.relkind::text || ' ' || c.relowner::regrole::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname !~ '^(pg_|information_schema)'
UNION ALL
SELECT 'function', n.nspname, p.proname, p.prosecdef::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname !~ '^(pg_|information_schema)'
UNION ALL
SELECT 'type', n.nspname, t.typname, t.typtype::text
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname !~ '^(pg_|information_schema)'
UNION ALL
SELECT 'trigger', c.relname, g.tgname, '' FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
 WHERE NOT g.tgisinternal
UNION ALL
SELECT 'large object', oid::text, '', '' FROM pg_largeobject_metadata
UNION ALL
SELECT 'role of ours', r.rolname, d.classid::regclass::text, d.deptype::text
  FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
 WHERE r.rolname LIKE 'docex$%%'
   AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY 1, 2, 3
"""


def pg_snapshot(env: Env, pg_conn: Any, tenants: list[str]) -> tuple[Any, ...]:
    """Every object of every schema of the database (public included), the roles that hold
    anything here, and the rows of ``tenants``."""
    env.manager.close_all_connections()
    with pg_conn.cursor() as cur:
        cur.execute(_PG_OBJECTS)
        objects = cur.fetchall()
    return objects, {t: env.digest(t) for t in tenants}


def file_snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` and its sha256 (hidden scratch files included)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def snapshot(env: Env, pg_conn: Any, tenants: list[str]) -> Any:
    if env.kind == "postgresql":
        return pg_snapshot(env, pg_conn, tenants)
    return file_snapshot(env.manager.settings.sqlite.storage_root)
