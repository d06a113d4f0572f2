"""The revision order read from the scripts' text is Alembic's own, or not used at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from migration_helpers import scripts_with

from docex_ops.migrate.scripts import MIGRATIONS_DIR, MigrationScripts, scan_order


def _alembic_order(location: Path) -> list[str]:
    scripts = MigrationScripts(location)
    return [r.revision for r in reversed(list(scripts.script.walk_revisions()))]


def test_scanned_order_is_alembics(tmp_path: Path) -> None:
    assert scan_order(MIGRATIONS_DIR / "versions") == _alembic_order(MIGRATIONS_DIR)
    extra = scripts_with(tmp_path, {"0004_a": "pass", "0005_b": "pass"})
    assert scan_order(extra / "versions") == _alembic_order(extra)
    assert MigrationScripts(extra).order[-2:] == ["0004_a", "0005_b"]


def test_a_branch_or_an_unplain_script_is_left_to_alembic(tmp_path: Path) -> None:
    branched = scripts_with(tmp_path, {"0004_a": "pass"})
    text = (branched / "versions" / "0004_a.py").read_text()
    (branched / "versions" / "0004_b.py").write_text(text.replace("0004_a", "0004_b"))
    assert scan_order(branched / "versions") is None
    computed = tmp_path / "computed"
    plain = scripts_with(computed, {"0004_c": "pass"})
    path = plain / "versions" / "0004_c.py"
    path.write_text(path.read_text().replace("revision = '0004_c'", "revision = '0004' + '_c'"))
    assert scan_order(plain / "versions") is None
    assert MigrationScripts(plain).order[-1] == "0004_c"  # Alembic read it


def test_status_needs_no_alembic() -> None:
    code = ("import sys\nfrom docex_ops.migrate import MigrationScripts, status_of\n"
            "s = MigrationScripts()\nassert s.head and s.position(s.head)\n"
            "status_of(s, [])\nassert 'alembic' not in sys.modules, 'alembic imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)

