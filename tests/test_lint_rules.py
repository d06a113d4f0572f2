"""Each lint rule: a revision that triggers it and one that does not, linted from the SQL
Alembic really renders for the backend (PostgreSQL's parser reads it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from migration_helpers import HEAD, scripts_with

from docex_ops.lint.registry import RULE_IDS
from docex_ops.lint.run import lint_revisions
from docex_ops.migrate.scripts import MigrationScripts

NOT_NULL_CHECKED = '''
op.execute("ALTER TABLE document ADD CONSTRAINT ck_ct CHECK (content_type IS NOT NULL) NOT VALID")
op.execute("ALTER TABLE document VALIDATE CONSTRAINT ck_ct")
op.alter_column("document", "content_type", nullable=False, existing_type=sa.String(100))
'''
NEW_TABLE = 'op.create_table("scratch_x", sa.Column("id", sa.Integer(), primary_key=True))\n'
ENUM_CREATED_HERE = '''
op.execute("CREATE TYPE mood AS ENUM ('sad')")
op.execute("ALTER TYPE mood ADD VALUE 'calm'")
'''
BATCH_REBUILD = '''
from docex_ops.schema.head import document
with op.batch_alter_table("document", copy_from=document, recreate="always") as batch:
    batch.add_column(sa.Column("note", sa.Text()))
'''

# rule -> dialect -> (a revision that triggers it, one that does not)
CASES: dict[str, list[tuple[str, str, str]]] = {
    "table-rewrite": [
        ("postgresql", 'op.alter_column("document", "size", type_=sa.BigInteger(), '
                       'existing_type=sa.Integer())',
         'op.alter_column("document", "name", type_=sa.Text(), existing_type=sa.String(255))'),
        ("postgresql", 'op.add_column("document", sa.Column("token", sa.Text(), '
                       'server_default=sa.text("gen_random_uuid()::text")))',
         'op.add_column("document", sa.Column("seen", sa.DateTime(), '
         'server_default=sa.text("now()")))'),
        ("postgresql", 'op.execute("ALTER TABLE document SET TABLESPACE pg_default")',
         'op.execute("ALTER TABLE document SET (fillfactor = 90)")'),
    ],
    "index-not-concurrent": [
        ("postgresql", 'op.create_index("ix_doc_name", "document", ["name"])',
         'op.create_index("ix_doc_name", "document", ["name"], postgresql_concurrently=True)'),
        ("postgresql", 'op.execute("ALTER TABLE document ADD CONSTRAINT uq_n UNIQUE (name)")',
         NEW_TABLE + 'op.create_index("ix_scratch", "scratch_x", ["id"])'),
    ],
    "not-null-unvalidated": [
        ("postgresql", 'op.alter_column("document", "content_type", nullable=False, '
                       'existing_type=sa.String(100))', NOT_NULL_CHECKED),
    ],
    "constraint-not-valid": [
        ("postgresql", 'op.create_check_constraint("ck_size", "document", "size >= 0")',
         'op.execute("ALTER TABLE document ADD CONSTRAINT ck_size CHECK (size >= 0) '
         'NOT VALID")'),
        ("postgresql", 'op.create_foreign_key("fk_x", "file_history", "docbasket", '
                       '["id"], ["id"])',
         'op.execute("ALTER TABLE file_history ADD CONSTRAINT fk_x FOREIGN KEY (id) '
         'REFERENCES docbasket (id) NOT VALID")'),
    ],
    "drop": [
        ("postgresql", 'op.drop_column("document", "raw_content")',
         NEW_TABLE + 'op.drop_table("scratch_x")'),
        ("sqlite", 'op.drop_table("file_history")', NEW_TABLE + 'op.drop_table("scratch_x")'),
    ],
    "rename": [
        ("postgresql", 'op.alter_column("document", "name", new_column_name="title")',
         NEW_TABLE + 'op.rename_table("scratch_x", "scratch_y")'),
        ("sqlite", 'op.rename_table("file_history", "file_log")',
         NEW_TABLE + 'op.rename_table("scratch_x", "scratch_y")'),
    ],
    "enum-add-value": [
        ("postgresql", "op.execute(\"ALTER TYPE mood ADD VALUE 'calm'\")", ENUM_CREATED_HERE),
    ],
    "vacuum-full": [
        ("postgresql", 'op.execute("VACUUM FULL document")', 'op.execute("VACUUM document")'),
        ("postgresql", 'op.execute("CLUSTER document USING document_pkey")',
         'op.execute("ANALYZE document")'),
    ],
    "sqlite-rebuild": [
        ("sqlite", BATCH_REBUILD, 'op.add_column("document", sa.Column("note", sa.Text()))'),
    ],
}


def _rules(tmp_path: Path, body: str, dialect: str, lock_timeout: float | None = 5.0
           ) -> set[str]:
    scripts = MigrationScripts(scripts_with(tmp_path, {"0004_x": body}))
    report = lint_revisions(scripts, [dialect], start=HEAD, lock_timeout=lock_timeout)
    assert report.revisions == ["0004_x"]
    return {f.rule for f in report.findings}


@pytest.mark.parametrize(("rule", "dialect", "bad", "good"), [
    (rule, *case) for rule, cases in CASES.items() for case in cases])
def test_rule_triggers_and_clean(tmp_path: Path, rule: str, dialect: str, bad: str,
                                 good: str) -> None:
    assert rule in _rules(tmp_path / "bad", bad, dialect)
    assert rule not in _rules(tmp_path / "good", good, dialect)


def test_lock_timeout_rule(tmp_path: Path) -> None:
    add = 'op.add_column("document", sa.Column("note", sa.Text()))'
    assert _rules(tmp_path / "a", add, "postgresql", lock_timeout=0) == {"lock-timeout"}
    assert _rules(tmp_path / "b", add, "postgresql", lock_timeout=2.0) == set()
    own = 'op.execute("SET lock_timeout = \'2s\'")\n' + add
    assert _rules(tmp_path / "c", own, "postgresql", lock_timeout=0) == set()


def test_every_rule_has_cases() -> None:
    assert set(CASES) | {"lock-timeout"} == set(RULE_IDS)


def test_shipped_revisions_pass_or_carry_their_waivers() -> None:
    report = lint_revisions(MigrationScripts(), ["postgresql", "sqlite"], lock_timeout=5.0)
    assert report.ok, [(f.revision, f.rule) for f in report.stopping]
    waived = {(f.revision, f.rule) for f in report.findings if f.waived}
    assert waived == {("0002_docex_2_9_9", "drop"), ("0002_docex_2_9_9", "rename")}
    assert all("in the revision" in str(f.waived) for f in report.findings if f.waived)


def test_type_change_is_judged_from_the_column_history(tmp_path: Path) -> None:
    # 0003 made document.source text: text -> varchar(10) rewrites, -> text does not.
    narrow = 'op.alter_column("document", "source", type_=sa.String(10), existing_type=sa.Text())'
    assert "table-rewrite" in _rules(tmp_path / "a", narrow, "postgresql")
    same = 'op.alter_column("document", "source", type_=sa.Text(), existing_type=sa.Text())'
    assert "table-rewrite" not in _rules(tmp_path / "b", same, "postgresql")


# SQLite batch mode: the rebuild's row copy says what happened to each column.
BATCH = '''
from docex_ops.schema.head import document
with op.batch_alter_table("document", copy_from=document, recreate="{recreate}") as batch:
    {op}
'''
BATCH_DROP = BATCH.format(op='batch.drop_column("raw_content")', recreate="auto")
BATCH_RENAME = BATCH.format(op='batch.alter_column("name", new_column_name="title")',
                            recreate="always")
# Rebuilt too (recreate="always"), so the copy is read and found to lose nothing.
BATCH_ADD = BATCH.format(op='batch.add_column(sa.Column("note", sa.Text(), nullable=True))',
                         recreate="always")


def _sqlite_findings(tmp_path: Path, body: str) -> dict[str, list[object]]:
    scripts = MigrationScripts(scripts_with(tmp_path, {"0004_x": body}))
    report = lint_revisions(scripts, ["sqlite"], start=HEAD, lock_timeout=5.0)
    found: dict[str, list[object]] = {}
    for f in report.findings:
        found.setdefault(f.rule, []).append(f)
    return found


def test_sqlite_batch_drop_column_is_data_loss(tmp_path: Path) -> None:
    found = _sqlite_findings(tmp_path, BATCH_DROP)
    [drop] = found["drop"]
    assert drop.table == "document" and "raw_content" in drop.why  # type: ignore[attr-defined]
    assert drop.severity == "error" and drop.scans  # type: ignore[attr-defined]
    assert [f.table for f in found["sqlite-rebuild"]] == ["document"]  # type: ignore[attr-defined]
    assert "rename" not in found


def test_sqlite_batch_rename_column_is_a_rename(tmp_path: Path) -> None:
    found = _sqlite_findings(tmp_path, BATCH_RENAME)
    [rename] = found["rename"]
    assert rename.table == "document" and "name -> title" in rename.why  # type: ignore[attr-defined]
    assert "drop" not in found


def test_sqlite_batch_adding_a_nullable_column_loses_nothing(tmp_path: Path) -> None:
    found = _sqlite_findings(tmp_path, BATCH_ADD)
    assert "drop" not in found and "rename" not in found
    assert [f.table for f in found["sqlite-rebuild"]] == ["document"]  # type: ignore[attr-defined]


def test_shipped_sqlite_rebuild_of_2_9_9_shows_its_drop_and_rename() -> None:
    report = lint_revisions(MigrationScripts(), ["sqlite"], lock_timeout=5.0)
    found = {(f.revision, f.rule, f.table) for f in report.findings}
    assert {("0002_docex_2_9_9", "drop", "document_metadata"),
            ("0002_docex_2_9_9", "rename", "document_metadata")} <= found
    assert not any(f.rule in ("drop", "rename") for f in report.findings
                   if f.revision == "0003_object_paths")


# Batch mode as revisions usually write it: no copy_from, so the table is reflected and
# offline rendering refuses; the lint runs it on an in-memory database and reads that.
REFLECTED = '''
with op.batch_alter_table("document") as batch:
    {op}
'''


@pytest.mark.parametrize(("op", "rule", "detail"), [
    ('batch.drop_column("raw_content")', "drop", "raw_content"),
    ('batch.alter_column("name", new_column_name="title")', "rename", "name -> title"),
])
def test_sqlite_batch_with_reflection_is_read_too(tmp_path: Path, op: str, rule: str,
                                                  detail: str) -> None:
    found = _sqlite_findings(tmp_path, REFLECTED.format(op=op))
    assert "unrendered" not in found
    [hit] = found[rule]
    assert hit.table == "document" and detail in hit.why  # type: ignore[attr-defined]
    assert [f.table for f in found["sqlite-rebuild"]] == ["document"]  # type: ignore[attr-defined]
    other = "rename" if rule == "drop" else "drop"
    assert other not in found


def test_sqlite_batch_with_reflection_adding_a_column_loses_nothing(tmp_path: Path) -> None:
    op = 'batch.add_column(sa.Column("note", sa.Text(), nullable=True))'
    body = REFLECTED.format(op=op).replace('("document")', '("document", recreate="always")')
    found = _sqlite_findings(tmp_path, body)
    assert "unrendered" not in found and "drop" not in found and "rename" not in found
    assert [f.table for f in found["sqlite-rebuild"]] == ["document"]  # type: ignore[attr-defined]
