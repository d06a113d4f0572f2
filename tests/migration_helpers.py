"""Helpers for migration tests: extra revisions in a copied script directory, CLI runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from json_support import json_data

from docex_ops.cli import main
from docex_ops.migrate.scripts import MIGRATIONS_DIR

HEAD = "0003_object_paths"


def scripts_with(tmp_path: Path, revisions: dict[str, str]) -> Path:
    """A copy of docex-ops' scripts plus extra revisions (id -> upgrade body), chained."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    down = HEAD
    for revision, body in revisions.items():
        fast = "fast_path = True" if "# fast" in body else "fast_path = False"
        (target / "versions" / f"{revision}.py").write_text(
            f'"""Test revision {revision}."""\nimport time\n\nimport sqlalchemy as sa\n'
            f"from alembic import op\n\nrevision = {revision!r}\ndown_revision = {down!r}\n"
            f"branch_labels = None\ndepends_on = None\n{fast}\n\n\ndef upgrade() -> None:\n"
            + textwrap.indent(textwrap.dedent(body).strip(), "    ")
            + "\n\n\ndef downgrade() -> None:\n    pass\n")
        down = revision
    return target


def cli(config_file: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config_file), *args])
    return result.exit_code, result.output


def cli_json(config_file: Path, *args: str) -> Any:
    """(exit code, the envelope's data, checked against its schema); stderr (notes,
    errors) is kept out of the JSON."""
    result = CliRunner().invoke(main, ["--config", str(config_file), "--format", "json", *args])
    return result.exit_code, json_data(result.stdout)


def spawn(config_file: Path, *args: str) -> subprocess.Popen[str]:
    """docex-ops in its own process (for kill and concurrency tests)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "docex_ops.cli", "--config", str(config_file), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


REPO = Path(__file__).resolve().parent.parent


def alembic(config_file: Path, *args: str, ini: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Plain ``alembic`` in its own process, on the repository's alembic.ini."""
    command = [sys.executable, "-m", "alembic", "-c", str(ini or REPO / "alembic.ini"),
               "-x", f"config={config_file}", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
