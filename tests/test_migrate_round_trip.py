"""Any downgrade followed by an upgrade works, by the fast path, on both backends.

For every pair of shipped revisions A > B (base included): a tenant at A is downgraded to
B and upgraded back to A, then to head, all through the CLI; at each stop its catalog is
the one of a fresh tenant taken straight from nothing to that revision. One tenant per
pair, all pairs moved together (one CLI run per revision), so the test stays small.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

from docs_support import with_files, write_config
from migration_helpers import HEAD, cli

from docex_ops.backends.catalog import Catalog
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.scripts import MigrationScripts

REVISIONS: list[str | None] = [None, *MigrationScripts().order]  # None: base


def _name(revision: str | None) -> str:
    return revision or "base"


def _tag(revision: str | None) -> str:
    return revision[:4] if revision else "base"


def _migrate(config: Path, action: str, target: str | None, tenants: list[str],
             *extra: str) -> None:
    selected = [arg for t in tenants for arg in ("--tenant", t)]
    code, out = cli(config, "migrate", action, _name(target), *selected, *extra)
    assert code == 0, out
    assert "Traceback" not in out


def _fast_upgrades(audit: Path, seen: int) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in audit.read_text().splitlines()][seen:]
    return [line for line in lines if line["action"] == "tenant.migrate"
            and line["detail"]["action"] == "upgrade"]


def _assert_same(actual: Catalog, expected: Catalog, where: str,
                 column_order: bool = True) -> None:
    assert sorted(actual) == sorted(expected), where
    for table, want in expected.items():
        got = actual[table]
        for key in ("columns", "pk", "unique", "fks", "indexes"):
            mine, theirs = got[key], want[key]
            if key == "columns" and not column_order:
                mine, theirs = sorted(mine), sorted(theirs)
            assert mine == theirs, f"{where}: {table} {key}"


def test_every_downgrade_then_upgrade_round_trips_by_the_fast_path(
        settings: Settings, tmp_path: Path) -> None:
    settings = with_files(settings, tmp_path)
    config = write_config(settings, tmp_path / "config.yaml")
    audit = settings.audit_file
    assert audit is not None
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(settings)
    pairs = list(combinations(reversed(REVISIONS), 2))  # (A, B) with A above B
    assert len(pairs) == len(REVISIONS) * (len(REVISIONS) - 1) // 2
    tenants = {pair: f"rt_{_tag(pair[0])}_{_tag(pair[1])}" for pair in pairs}
    fresh = {rev: f"fresh_{_tag(rev)}" for rev in REVISIONS}

    # The references: empty tenants (at base, no version table) taken straight up.
    for tenant_id in [*fresh.values(), *tenants.values()]:
        assert manager.backend.create(tenant_id, "")
    by_start: dict[str | None, list[str]] = defaultdict(list)
    for rev in REVISIONS[1:]:
        by_start[rev].append(fresh[rev])
    for (above, _), tenant_id in tenants.items():
        by_start[above].append(tenant_id)
    for rev, group in by_start.items():
        _migrate(config, "upgrade", rev, group)
    reference = {rev: manager.backend.catalog(fresh[rev]) for rev in REVISIONS}
    assert reference[None] == {} and reference[HEAD]
    manager.provision("provisioned")  # head DDL: what `tenants provision` makes
    _assert_same(manager.backend.catalog("provisioned"), reference[HEAD], "provision")

    def check(where: str, at: dict[tuple[str | None, str | None], str | None],
              column_order: bool = True) -> None:
        for pair, rev in at.items():
            _assert_same(manager.backend.catalog(tenants[pair]), reference[rev],
                         f"{tenants[pair]} {where} {_name(rev)}", column_order)

    by_below: dict[str | None, list[str]] = defaultdict(list)
    for (_, below), tenant_id in tenants.items():
        by_below[below].append(tenant_id)
    for below, group in by_below.items():
        _migrate(config, "downgrade", below, group, "--force")
    # A column a downgrade adds back comes last (PostgreSQL cannot insert one in place):
    # the same columns, not in the same order, until the upgrade drops it again.
    check("down at", {pair: pair[1] for pair in pairs}, column_order=False)

    seen = len(audit.read_text().splitlines())
    by_above: dict[str | None, list[str]] = defaultdict(list)
    for (above, _), tenant_id in tenants.items():
        by_above[above].append(tenant_id)
    for above, group in by_above.items():
        _migrate(config, "upgrade", above, group)
    check("back up at", {pair: pair[0] for pair in pairs})
    ups = _fast_upgrades(audit, seen)
    assert sorted(u["tenant"] for u in ups) == sorted(tenants.values())
    assert {u["detail"]["path"] for u in ups} == {"fast"}, ups

    seen = len(audit.read_text().splitlines())
    _migrate(config, "upgrade", HEAD, [t for (a, _), t in tenants.items() if a != HEAD])
    check("then at", {pair: HEAD for pair in pairs})
    assert {u["detail"]["path"] for u in _fast_upgrades(audit, seen)} == {"fast"}
    TenantDatabaseManager.reset()

