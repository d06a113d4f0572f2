"""examples/multi_tenancy.py runs every scenario of the guide, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from docs_support import with_files, write_config

from docex_ops.config.settings import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "multi_tenancy.py"
SECTIONS = ("Basic usage", "Multiple tenants", "Tenant database management",
            "Always provide UserContext", "Tenant ID validation", "Error handling",
            "Audit trail")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLE), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_example_on_both_backends(settings: Settings, tmp_path: Path) -> None:
    """SQLite: the default (no config, temp work dir); PostgreSQL: through --config."""
    if settings.db_type == "sqlite":
        result = _run("--workdir", str(tmp_path / "work"), cwd=tmp_path)
    else:
        config = write_config(with_files(settings, tmp_path), tmp_path / "pg.yaml")
        result = _run("--config", str(config), "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert [s for s in SECTIONS if f"== {s}" in out] == list(SECTIONS)
    assert "[FAIL]" not in out and ", 0 failed" in out
    assert int(out.rsplit("\n", 3)[-2].split()[0]) >= 30  # "N checks passed, 0 failed"
    if settings.db_type == "sqlite":
        assert (tmp_path / "work" / "storage" / "tenant_tenant1" / "docex.db").is_file()
    else:
        assert "on postgresql://" in out


def test_example_fails_loudly_on_a_used_database(settings_factory: Callable[..., Settings],
                                                 tmp_path: Path) -> None:
    config = write_config(with_files(settings_factory("sqlite"), tmp_path), tmp_path / "c.yaml")
    assert _run("--config", str(config), cwd=tmp_path).returncode == 0
    again = _run("--config", str(config), cwd=tmp_path)
    assert again.returncode == 1 and "--tenant-prefix" in again.stdout
    assert _run("--config", str(config), "--tenant-prefix", "run2", cwd=tmp_path).returncode == 0


def test_example_config_error_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: {type: oracle}\n")
    result = _run("--config", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and "database.type" in result.stderr
