"""The README's first command works end to end on the embedded SQLite default."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quickstart_runs_the_whole_toolkit(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCEX_CONFIG",
                                                            "DOCEX_DATABASE_URL")}
    env["DOCEX_QUICKSTART_DIR"] = str(tmp_path)
    env["HOME"] = str(tmp_path)  # no ~/.docex/config.yaml: the embedded default
    result = subprocess.run(["bash", str(REPO / "scripts" / "quickstart.sh")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "initech   0002_docex_2_9_9  0003_object_paths  done" in out
    assert "3 current" in result.stderr + out
    assert out.count("ok ") >= 3 and "0 FAIL" in result.stderr + out
    assert sorted(p.parent.name for p in (tmp_path / "storage").glob("tenant_*/docex.db")) == \
        ["tenant_acme", "tenant_globex", "tenant_initech"]
    assert len(list((tmp_path / "backups").rglob("*.manifest.json"))) == 3
