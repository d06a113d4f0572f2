"""verify-isolation --record: the run stored in the control schema/file, and collect()
showing its planted failing check."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from migration_helpers import cli, cli_json

from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.observe.collect import collect


def plant_view_into_other_tenant(kind: str, locations: dict[str, str], pg_conn: Any) -> str:
    """A view in tenant a reading tenant b: the check that must FAIL on each kind."""
    if kind == "postgresql":
        with pg_conn.cursor() as cur:
            cur.execute(f"CREATE VIEW {locations['a']}.peek AS "
                        f"SELECT * FROM {locations['b']}.docbasket")
        return "references"
    with closing(sqlite3.connect(locations["a"])) as conn:
        conn.execute("CREATE VIEW peek AS SELECT id FROM docbasket")
        conn.commit()
    return "code"


def test_recorded_isolation_run_shows_its_failing_check(
        kind: str, manager: TenantDatabaseManager, config_file: Path,
        request: Any) -> None:
    assert collect(manager).isolation is None  # never recorded: nothing, and no problem
    assert cli(config_file, "tenants", "provision", "a", "b")[0] == 0
    _, listing = cli_json(config_file, "tenants", "list")
    locations = {t["tenant"]: t["location"] for t in listing["tenants"]}
    pg_conn = request.getfixturevalue("pg_conn") if kind == "postgresql" else None
    check = plant_view_into_other_tenant(kind, locations, pg_conn)
    code, data = cli_json(config_file, "verify-isolation", "--check", check, "--record")
    assert code == 1 and data["record_id"]
    record = collect(manager).isolation
    assert record is not None
    assert record.counts[(check, "fail")] == 1
    for status in ("PASS", "WARN", "FAIL"):  # the counts are the run's own
        assert sum(n for (_, s), n in record.counts.items() if s == status.lower()) == \
            data["counts"][status]
    assert [(f.check, f.status, f.tenant_id) for f in record.findings] == [(check, "fail", "a")]
    # A second, clean run is the last one.
    assert cli(config_file, "verify-isolation", "--check", "contents", "--record")[0] in (0, 1)
    newer = collect(manager).isolation
    assert newer is not None and newer.recorded_at >= record.recorded_at
    assert not any(c == check for c, _ in newer.counts)
