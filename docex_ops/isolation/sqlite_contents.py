"""SQLite contents: the file is sound and holds the DocEX tables, nothing unexpected.

A view or trigger in a tenant file that names another (attached) database
makes SQLite refuse the whole schema ("malformed database schema ... cannot
reference objects in database ..."): it is reported as an unreadable schema,
naming the object SQLite names.
"""

from __future__ import annotations

from pathlib import Path

from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.expected import EXPECTED_TABLES, missing_tables
from docex_ops.isolation.results import CheckResult, fail, warn, with_passes
from docex_ops.isolation.sqlite_code import CODE_TYPES
from docex_ops.isolation.sqlite_facts import SqliteContents, read_contents

INTEGRITY = "integrity"
CONTENTS = "contents"


def check_integrity(ctx: IsolationContext) -> list[CheckResult]:
    def judge(tenant: str) -> list[CheckResult]:
        contents = read_contents(Path(ctx.tenants[tenant]))
        if contents.error or contents.quick_check != ("ok",):
            problem = contents.error or "; ".join(contents.quick_check[:3])
            return [fail(INTEGRITY, tenant, ctx.tenants[tenant],
                         f"PRAGMA quick_check: {problem}; restore from a backup")]
        return []
    findings = ctx.each_subject(judge)  # -j files at once
    return with_passes(INTEGRITY, ctx.subjects, findings, "-", "PRAGMA quick_check ok")


def check_contents(ctx: IsolationContext) -> list[CheckResult]:
    findings = ctx.each_subject(
        lambda tenant: judge_contents(ctx, tenant, read_contents(Path(ctx.tenants[tenant]))))
    return with_passes(CONTENTS, ctx.subjects, findings, "-",
                       "DocEX tables present, nothing unexpected")


def judge_contents(ctx: IsolationContext, tenant: str,
                   contents: SqliteContents) -> list[CheckResult]:
    location = ctx.tenants[tenant]
    if contents.error:
        return [fail(CONTENTS, tenant, location, f"cannot read the schema: {contents.error}")]
    findings = []
    tables = {o.name for o in contents.objects if o.type == "table"}
    missing = missing_tables(tables)
    if missing:
        findings.append(fail(CONTENTS, tenant, location, f"DocEX tables missing: "
                             f"{', '.join(missing)}; migrate or re-provision the tenant"))
    for obj in contents.objects:
        if obj.type in CODE_TYPES:
            continue  # views and triggers are the ``code`` check's FAIL
        expected = obj.type == "index" or (obj.type == "table" and obj.name in EXPECTED_TABLES)
        if not expected and not ctx.is_allowed(location, obj.name):
            findings.append(warn(CONTENTS, tenant, f"{obj.type} {obj.name}",
                                 f"unexpected {obj.type} in the tenant file; remove it, or "
                                 f"accept it with --allow {obj.name}"))
    return findings
