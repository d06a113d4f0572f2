"""A command imports only what it uses: `--help` and the configuration load no database
layer, and `--help` lists the lazily loaded commands by their own summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
from json_support import json_data

from docex_ops.cli import _LAZY, main
from docex_ops.manager.tenant_manager import TenantDatabaseManager


def test_the_cli_and_the_configuration_import_no_database_layer() -> None:
    code = ("import sys\nfrom docex_ops.cli import main\n"
            "from docex_ops.config.settings import load_settings\nload_settings(None, {})\n"
            "loaded = [m for m in ('sqlalchemy', 'alembic') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _help(preload: bool) -> str:
    code = ("import click\nfrom docex_ops.cli import main\n"
            + ("ctx = click.Context(main)\nfor name in main.list_commands(ctx):\n"
               "    main.get_command(ctx, name)\n" if preload else "")
            + "main.main(['--help'], prog_name='docex-ops')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80"}).stdout


def test_help_lists_each_command_by_its_own_summary() -> None:
    ctx = click.Context(main)
    for name, (_, summary) in _LAZY.items():
        command = main.get_command(ctx, name)  # imports it
        assert command is not None and command.help is not None
        first = command.help.strip().split("\n\n")[0]
        assert " ".join(first.split()) == summary, name
    assert _help(preload=False) == _help(preload=True) != ""


def test_status_and_a_no_op_upgrade_load_no_sqlalchemy_and_read_the_real_tenants(
        manager: TenantDatabaseManager, config_file: Path, kind: str) -> None:
    manager.provision("t1")
    manager.provision("t2")
    code = ("import json, sys\nfrom docex_ops.cli import main\n"
            "for args in (['migrate', 'status'], ['migrate', 'upgrade']):\n"
            "    try:\n"
            f"        main.main(['--config', {str(config_file)!r}, '--format', 'json', *args])\n"
            "    except SystemExit as exit:\n"
            "        assert exit.code == 0, (args, exit.code)\n"
            "print('LOADED', [m for m in ('sqlalchemy', 'alembic') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    status, _ = json.JSONDecoder().raw_decode(out)
    assert json_data(json.dumps(status), "migrate status")["counts"] == {"current": 2}
    if kind == "postgresql":  # SQLite's path is not measured against a target
        assert out.strip().splitlines()[-1] == "LOADED []"
