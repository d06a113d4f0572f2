"""--dry-run is the plan: it runs the real run's checks and exits as the real run would;
and `tenants show` answers on stdout alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from docex_ops.cli import main
from docex_ops.config.settings import load_settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket


def _run(config_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.output


def _add_row(config_file: Path, tenant_id: str) -> None:
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(load_settings(config_file))
    now = dt.datetime(2026, 1, 1)
    with manager.tenant_transaction(tenant_id) as session:
        session.execute(docbasket.insert().values(id="bas_1", name="n", storage_config={},
                                                  status="active", created_at=now,
                                                  updated_at=now))
    TenantDatabaseManager.reset()


def test_drop_dry_run_refuses_as_the_drop_does(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", "full", "empty")[0] == 0
    _add_row(config_file, "full")
    dry_code, dry_out = _run(config_file, "tenants", "drop", "full", "--dry-run")
    real_code, real_out = _run(config_file, "tenants", "drop", "full", "--yes")
    assert dry_code == real_code == 1, (dry_out, real_out)
    assert "Traceback" not in dry_out and "would drop" not in dry_out
    assert "--force" in dry_out and "--force" in real_out
    code, out = _run(config_file, "tenants", "drop", "full", "--dry-run", "--force", "--yes")
    assert code == 0 and "would drop tenant full" in out and "holds 1 rows" in out
    code, out = _run(config_file, "tenants", "drop", "empty", "--dry-run")
    assert code == 0 and "would drop tenant empty" in out and "needs --yes" in out
    code, out = _run(config_file, "tenants", "list", "--format", "json")
    assert '"full"' in out and '"empty"' in out  # a dry run drops nothing


def test_tenants_show_prints_everything_on_stdout(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", "shown")[0] == 0
    result = CliRunner().invoke(main, ["--config", str(config_file), "tenants", "show", "shown"])
    assert result.exit_code == 0
    assert "tenant shown at" in result.stdout and "revision 0003_object_paths" in result.stdout
    assert result.stderr == ""


def test_downgrade_dry_run_refuses_as_the_downgrade_does(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", "full", "empty")[0] == 0
    _add_row(config_file, "full")
    args = ("migrate", "downgrade", "0002_docex_2_9_9")
    dry_code, dry_out = _run(config_file, *args, "--dry-run")
    assert dry_code == 1, dry_out
    assert "refused" in dry_out and "would be refused: full" in dry_out
    assert "Traceback" not in dry_out
    forced_code, forced_out = _run(config_file, *args, "--dry-run", "--force")
    assert forced_code == 0, forced_out
    real_code, real_out = _run(config_file, *args, "--tenant", "full")
    assert real_code == dry_code, real_out
    code, out = _run(config_file, "--format", "json", "migrate", "status")
    assert '"0003_object_paths"' in out  # the refused run changed nothing for "full"


def test_a_refused_downgrade_resumes_with_force(config_file: Path, tmp_path: Path) -> None:
    """The refusal says "rerun with --force": `migrate resume RUN --force` is that rerun."""
    assert _run(config_file, "tenants", "provision", "kept")[0] == 0
    _add_row(config_file, "kept")
    code, out = _run(config_file, "migrate", "downgrade", "0002_docex_2_9_9", "--tenant", "kept")
    assert code == 1 and "rerun with --force" in out and "Traceback" not in out, out
    run_id = out.split("docex-ops migrate resume ")[1].split("`")[0]
    code, out = _run(config_file, "migrate", "resume", run_id)
    assert code == 1 and "rerun with --force" in out, out  # still refused without it
    safety = tmp_path / "safety"
    code, out = _run(config_file, "migrate", "resume", run_id, "--force",
                     "--safety-dir", str(safety))
    assert code == 0 and "Traceback" not in out, out
    assert "backed up first to" in out and any(safety.rglob("*")), out
    code, out = _run(config_file, "--format", "json", "migrate", "status")
    assert '"0002_docex_2_9_9"' in out and '"0003_object_paths"' not in out.split('"tenants"')[1]
