"""Plain `alembic` on docex-ops' scripts: unknown tenants are an error naming them, `--sql`
writes only the steps each tenant needs, and expected failures are one line with no
traceback. Real `alembic` processes against real PostgreSQL and SQLite files."""

from __future__ import annotations

from pathlib import Path

from migration_helpers import HEAD, alembic

from docex_ops.manager.tenant_manager import TenantDatabaseManager


def _one_line_failure(result: object, *expected: str) -> None:
    code, out, err = (getattr(result, k) for k in ("returncode", "stdout", "stderr"))
    assert code != 0, (out, err)
    assert "Traceback" not in out + err, err
    # Alembic writes its FAILED line on stdout (its log line, if any, on stderr).
    lines = [line for line in out.splitlines() if line.startswith("FAILED: ")]
    assert len(lines) == 1, (out, err)
    for text in expected:
        assert text in lines[0], err


def test_unknown_tenants_are_named(manager: TenantDatabaseManager, config_file: Path) -> None:
    manager.provision("t05")
    result = alembic(config_file, "-x", "tenant=typo", "upgrade", "head")
    _one_line_failure(result, "no such tenant(s): typo")
    result = alembic(config_file, "-x", "tenant=t05,nosuch,other", "current")
    _one_line_failure(result, "nosuch, other")
    assert "t05" not in result.stdout  # refused before any tenant is visited
    result = alembic(config_file, "-x", "tenant=Bad!", "current")
    _one_line_failure(result, "tenant id 'Bad!' is invalid")
    result = alembic(config_file, "-x", "tenant=t05", "current")
    assert result.returncode == 0 and HEAD in result.stdout, result.stderr


def test_sql_writes_only_the_steps_each_tenant_needs(manager: TenantDatabaseManager,
                                                     config_file: Path) -> None:
    for tenant_id in ("at_head", "behind"):
        manager.provision(tenant_id)
    down = alembic(config_file, "-x", "tenant=behind", "-x", "force=1", "downgrade", "-1")
    assert down.returncode == 0, down.stderr
    result = alembic(config_file, "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "-- tenant behind" in out and "-- tenant at_head" not in out
    assert "Running upgrade 0002_docex_2_9_9 -> 0003_object_paths" in out
    assert "CREATE TABLE" not in out.replace("CREATE TABLE _alembic_tmp_", "")  # no base DDL
    assert "0001_docex_pre_2_9" not in out
    assert manager.backend.read_revisions(["behind"]) == {"behind": "0002_docex_2_9_9"}
    # A range given (FROM:TO) is the operator's: every selected tenant gets it.
    ranged = alembic(config_file, "-x", "tenant=at_head", "upgrade",
                     "0002_docex_2_9_9:head", "--sql")
    assert ranged.returncode == 0 and "-- tenant at_head" in ranged.stdout, ranged.stderr
    up = alembic(config_file, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    again = alembic(config_file, "upgrade", "head", "--sql")
    assert again.returncode == 0 and again.stdout.strip() == "", again.stdout


def test_expected_failures_have_no_traceback(manager: TenantDatabaseManager,
                                             config_file: Path, tmp_path: Path) -> None:
    manager.provision("keep")
    refused = alembic(config_file, "-x", "tenant=keep", "downgrade", "-1")
    _one_line_failure(refused, "tenant keep: ", "--force")
    assert manager.backend.read_revisions(["keep"]) == {"keep": HEAD}
    missing = alembic(tmp_path / "nowhere.yaml", "current")
    _one_line_failure(missing, "nowhere.yaml")
    unknown = alembic(config_file, "upgrade", "9999_nope")
    _one_line_failure(unknown, "9999_nope")
