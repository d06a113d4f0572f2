"""`tenants drop` of a `--with-role` tenant says what happens to its role: dropped when it
owns nothing else, else left and named with what holds it. Real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docs_support import with_files, write_config
from migration_helpers import cli

from docex_ops.config.settings import Settings


def _role_exists(conn: Any, role: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        return cur.fetchone() is not None


def test_drop_says_what_happens_to_the_tenants_role(
        settings_factory: Callable[..., Settings], pg_conn: Any, tmp_path: Path) -> None:
    settings = with_files(settings_factory("postgresql"), tmp_path)
    config = write_config(settings, tmp_path / "config.yaml")
    # Roles are cluster-wide: ids of this test's own, so no other run shares them.
    alone, holding, plain = (f"r{uuid.uuid4().hex[:8]}" for _ in range(3))
    assert cli(config, "tenants", "provision", alone, holding, "--with-role")[0] == 0
    assert cli(config, "tenants", "provision", plain)[0] == 0

    code, out = cli(config, "tenants", "drop", alone, "--yes")
    assert code == 0, out
    assert f"role docex_t_{alone} dropped: it owned nothing else" in out
    assert not _role_exists(pg_conn, f"docex_t_{alone}")

    role = f"docex_t_{holding}"
    with pg_conn.cursor() as cur:  # something outside the tenant the role still owns
        cur.execute(f"CREATE TABLE public.{holding}_extra (id int)")
        cur.execute(f'ALTER TABLE public.{holding}_extra OWNER TO "{role}"')
    try:
        code, out = cli(config, "tenants", "drop", holding, "--yes")
        assert code == 0, out
        assert f"role {role} left: it still owns {holding}_extra" in out, out
        assert "REASSIGN OWNED BY" in out and "Traceback" not in out
        assert _role_exists(pg_conn, role)
        audit = settings.audit_file.read_text()  # type: ignore[union-attr]
        assert f'"role":"{role}","role_dropped":false' in audit
    finally:
        with pg_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS public.{holding}_extra")
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')

    code, out = cli(config, "tenants", "drop", plain, "--yes")
    assert code == 0 and "role" not in out, out  # no role of its own: nothing to say
