"""The lint's render cache: a revision's SQL read back instead of rendered again, never a
stale one (an edited revision is linted from its new text), the same findings warm or
cold, and a cache that cannot be written only costs time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from migration_helpers import HEAD, scripts_with

from docex_ops.lint.cache import CACHE_ENV, RenderCache
from docex_ops.lint.run import lint_revisions
from docex_ops.migrate.scripts import MigrationScripts

INDEX = 'op.create_index("ix_doc_name", "document", ["name"])'
CONCURRENT = 'op.create_index("ix_doc_name", "document", ["name"], postgresql_concurrently=True)'


def _rules(location: Path, dialect: str = "postgresql") -> set[str]:
    report = lint_revisions(MigrationScripts(location), [dialect], start=HEAD,
                            lock_timeout=5.0)
    return {f.rule for f in report.findings}


def _cache(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(path))
    return path / "lint"


def test_editing_a_revision_changes_the_lint(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache(monkeypatch, tmp_path / "cache")
    location = scripts_with(tmp_path, {"0004_x": INDEX})
    assert "index-not-concurrent" in _rules(location)
    entries = set(cache.iterdir())
    assert entries  # the renderings were kept
    assert "index-not-concurrent" in _rules(location)
    assert set(cache.iterdir()) == entries  # read back, nothing rendered again
    revision = location / "versions" / "0004_x.py"
    revision.write_text(revision.read_text().replace(INDEX, CONCURRENT))
    assert "index-not-concurrent" not in _rules(location)
    new = [json.loads(p.read_text()) for p in set(cache.iterdir()) - entries]
    # Rendered again: only the edited revision (and the findings, which depend on it).
    assert sorted(next(iter(e)) for e in new) == ["findings", "sql"]


def test_a_helper_beside_the_revisions_is_part_of_every_key(tmp_path: Path) -> None:
    location = scripts_with(tmp_path, {"0004_x": INDEX})
    before = RenderCache(location, tmp_path / "c").key("postgresql", HEAD, "0004_x")
    (location / "versions" / "helpers.py").write_text("NAME = 'x'\n")  # no revision in it
    after = RenderCache(location, tmp_path / "c").key("postgresql", HEAD, "0004_x")
    assert before is not None and after is not None and before != after
    other_dialect = RenderCache(location, tmp_path / "c").key("sqlite", HEAD, "0004_x")
    assert other_dialect != after


def test_two_files_claiming_one_revision_are_never_cached(tmp_path: Path) -> None:
    location = scripts_with(tmp_path, {"0004_x": INDEX})
    text = (location / "versions" / "0004_x.py").read_text()
    (location / "versions" / "0004_copy.py").write_text(text)
    assert RenderCache(location, tmp_path / "c").key("postgresql", HEAD, "0004_x") is None


# A process of its own: whether Alembic / SQLAlchemy got imported is the proof that the
# warm lint read the cache rather than rendering.
LINT_PROCESS = """
import json, sys
from docex_ops.lint.run import lint_revisions
from docex_ops.migrate.scripts import MigrationScripts
report = lint_revisions(MigrationScripts(), ["postgresql", "sqlite"], lock_timeout=0)
print(json.dumps({"findings": [[f.revision, f.dialect, f.rule, f.statement, f.waived]
                               for f in report.findings],
                  "alembic": "alembic" in sys.modules,
                  "sqlalchemy": "sqlalchemy" in sys.modules,
                  "pglast": "pglast" in sys.modules}))
"""


def _lint_process(cache: Path) -> dict[str, object]:
    env = {**os.environ, CACHE_ENV: str(cache)}
    out = subprocess.run([sys.executable, "-c", LINT_PROCESS], env=env, check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out))


def test_a_warm_lint_reads_the_cache_without_alembic_and_finds_the_same(
        tmp_path: Path) -> None:
    cold = _lint_process(tmp_path)
    warm = _lint_process(tmp_path)
    assert cold["alembic"] and not warm["alembic"] and not warm["sqlalchemy"]
    assert cold["pglast"] and not warm["pglast"]  # the findings themselves were kept
    assert warm["findings"] == cold["findings"]
    assert {tuple(f[1:3]) for f in cold["findings"]} >= {("postgresql", "drop"),  # type: ignore[attr-defined]
                                                        ("postgresql", "lock-timeout")}


@pytest.mark.parametrize("where", ["file", "disabled"])
def test_no_usable_cache_still_lints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     where: str) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker) if where == "file" else "")
    location = scripts_with(tmp_path, {"0004_x": INDEX})
    assert "index-not-concurrent" in _rules(location)
    assert "index-not-concurrent" in _rules(location)
    assert blocker.read_text() == ""


def test_kept_findings_follow_the_lock_timeout(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _cache(monkeypatch, tmp_path / "cache")
    location = scripts_with(tmp_path, {"0004_x": 'op.add_column("document", '
                                                 'sa.Column("note", sa.Text()))'})

    def rules(lock_timeout: float | None) -> set[str]:
        report = lint_revisions(MigrationScripts(location), ["postgresql"], start=HEAD,
                                lock_timeout=lock_timeout)
        return {f.rule for f in report.findings}

    for _ in range(2):  # the second time from the cache
        assert rules(None) == {"lock-timeout"}
        assert rules(2.0) == set()
