"""--dry-run is the plan: it runs the real run's checks and exits as the real run would;
and `tenants show` answers on stdout alone."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from docs_support import add_basket_row

from docex_ops.cli import main
from docex_ops.config.settings import load_settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager


def _run(config_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.output


def test_drop_dry_run_refuses_as_the_drop_does(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", "full", "empty")[0] == 0
    add_basket_row(config_file, "full")
    dry_code, dry_out = _run(config_file, "tenants", "drop", "full", "--dry-run")
    real_code, real_out = _run(config_file, "tenants", "drop", "full", "--yes")
    assert dry_code == real_code == 1, (dry_out, real_out)
    assert "Traceback" not in dry_out and "would drop" not in dry_out
    assert "--force" in dry_out and "--force" in real_out
    code, out = _run(config_file, "tenants", "drop", "full", "--dry-run", "--force", "--yes")
    row = next(line.split() for line in out.splitlines() if line.startswith("full "))
    assert code == 0 and row[2:5] == ["would", "drop", "1"], out  # action, rows
    code, out = _run(config_file, "tenants", "drop", "empty", "--dry-run")
    assert code == 0 and "would drop" in out and "needs --yes" in out
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
    add_basket_row(config_file, "full")
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
    add_basket_row(config_file, "kept")
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


# -- every other command with --dry-run: the same checks, the same exit ----------------

def _dry_and_real(config_file: Path, *args: str, real: tuple[str, ...] = ()
                  ) -> tuple[tuple[int, str], tuple[int, str]]:
    """(dry run, real run) of one command; ``real``: what the real run adds (--yes, ...)."""
    dry = _run(config_file, *args, "--dry-run")
    wet = _run(config_file, *args, *real)
    assert "Traceback" not in dry[1] + wet[1], (dry, wet)
    return dry, wet


def _tenant_sql(config_file: Path, tenant_id: str, *statements: str) -> None:
    from sqlalchemy import text

    TenantDatabaseManager.reset()
    backend = TenantDatabaseManager(load_settings(config_file)).backend
    with backend.tenant_connection(tenant_id) as conn:
        for statement in statements:
            conn.execute(text(statement))
    TenantDatabaseManager.reset()


def test_upgrade_dry_run_exits_1_for_a_blocked_tenant(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", "fine", "unversioned")[0] == 0
    _tenant_sql(config_file, "unversioned", "DROP TABLE alembic_version")
    dry, real = _dry_and_real(config_file, "migrate", "upgrade")
    assert dry[0] == real[0] == 1, (dry, real)
    assert "unversioned" in dry[1] and "blocked" in dry[1]
    assert "migrate adopt" in dry[1] and "migrate adopt" in real[1]


def test_stamp_dry_run_exits_1_for_a_named_foreign_tenant(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", "ours")[0] == 0
    TenantDatabaseManager.reset()
    assert TenantDatabaseManager(load_settings(config_file)).backend.create(
        "theirs", "CREATE TABLE orders (id integer);")
    TenantDatabaseManager.reset()
    args = ("migrate", "stamp", "0002_docex_2_9_9", "--tenant", "theirs", "--tenant", "ours")
    dry, real = _dry_and_real(config_file, *args)
    assert dry[0] == real[0] == 1, (dry, real)
    assert "not DocEX tenants" in dry[1] and "theirs" in dry[1]
    assert "not DocEX tenants" in real[1]
    code, out = _run(config_file, *args[:3], "--tenant", "ours", "--dry-run")
    assert code == 0, out  # a plan with nothing the run would refuse


def test_adopt_dry_run_exits_as_adopt_does(config_file: Path) -> None:
    assert _run(config_file, "tenants", "provision", "drifted", "clean")[0] == 0
    _tenant_sql(config_file, "drifted", "DROP TABLE alembic_version",
                "DROP INDEX idx_docbasket_status")
    _tenant_sql(config_file, "clean", "DROP TABLE alembic_version")
    dry, real = _dry_and_real(config_file, "migrate", "adopt", "--tenant", "drifted")
    assert dry[0] == real[0] == 1 and "drifted" in dry[1], (dry, real)
    dry, real = _dry_and_real(config_file, "migrate", "adopt", "--tenant", "clean")
    assert dry[0] == real[0] == 0, (dry, real)
    assert "would-adopt" in dry[1] and "adopted" in real[1]


def test_single_server_refusals_are_the_same_dry(config_file: Path) -> None:
    """Commands that need several servers (move --finish, rebalance) or a server
    (close-idle on SQLite): the dry run refuses with the real run's line and code."""
    assert _run(config_file, "tenants", "provision", "solo")[0] == 0
    refused = [(("tenants", "move", "solo", "--finish"), ()),
               (("tenants", "rebalance"), ("--execute",))]
    if "sqlite" in config_file.read_text():
        refused.append((("pools", "close-idle", "--idle-for", "1s"), ()))
    for args, real in refused:
        dry, wet = _dry_and_real(config_file, *args, real=real)
        assert dry[0] == wet[0] != 0, (args, dry, wet)
        assert dry[1].strip().splitlines()[-1] == wet[1].strip().splitlines()[-1], (dry, wet)


def test_cleanup_dry_run_lists_what_cleanup_removes(config_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / ".docex-partial-0123456789abcdef.partial").write_text("half an archive")
    dry, real = _dry_and_real(config_file, "cleanup", "--backups", str(folder))
    assert dry[0] == real[0] == 0, (dry, real)
    assert "would remove 1" in dry[1] and "removed 1" in real[1]
    assert not any(folder.iterdir())


def test_split_dry_run_refuses_the_targets_the_run_refuses(
        config_file: Path, tmp_path: Path) -> None:
    from split_data import MAPPING, make_sqlite_source

    source = make_sqlite_source(tmp_path / "single.db")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    args = ("split", "run", "--source", str(source), "--mapping", str(mapping),
            "--unmapped", "skip", "--cross-tenant-edges", "drop", "--continue-on-error")
    assert _run(config_file, "tenants", "provision", "acme", "globex")[0] == 0
    _tenant_sql(config_file, "acme", "CREATE TABLE orders (id integer)",
                "INSERT INTO orders VALUES (1)")
    code, out = _run(config_file, "migrate", "downgrade", "0002_docex_2_9_9", "--tenant",
                     "globex", "--force")
    assert code == 0, out
    dry, real = _dry_and_real(config_file, *args)
    assert dry[0] == real[0] == 1, (dry, real)
    for out in (dry[1], real[1]):
        assert "orders" in out and "revision 0002_docex_2_9_9" in out, out


def test_prune_dry_run_refuses_and_removes_as_prune_does(config_file: Path,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    for _ in range(2):
        assert _run(config_file, "tenants", "provision", "pr")[0] == 0
        code, out = _run(config_file, "backup", "create", "--tenant", "pr", "--dest",
                         str(folder))
        assert code == 0, out
    dry, real = _dry_and_real(config_file, "backup", "prune", str(folder), "--keep", "1")
    assert dry[0] == real[0] == 0, (dry, real)
    removed = [line.split()[1] for line in real[1].splitlines() if line.startswith("removed")]
    assert removed and all(path in dry[1] for path in removed), (dry, real)
    (folder / "broken.manifest.json").write_text("{not json")
    dry, real = _dry_and_real(config_file, "backup", "prune", str(folder), "--keep", "1")
    assert dry[0] == real[0] == 2, (dry, real)  # an unreadable manifest: a usage problem
    assert "broken.manifest.json" in dry[1] and "broken.manifest.json" in real[1]
