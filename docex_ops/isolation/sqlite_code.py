"""SQLite: no view or trigger inside a tenant file.

DocEX's schema has neither. A trigger runs on every write of the application
or of a restore, a view answers for whatever it was made to; both live in the
file and travel with every backup of it. Across files there is nothing to
check: SQLite refuses a stored view or trigger that names another database
("cannot reference objects in database"), and ATTACH lasts one connection.
Each is a FAIL with the sqlite3 command that drops it, unless accepted with
``--allow``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import CheckResult, fail, with_passes
from docex_ops.isolation.sqlite_facts import read_contents

NAME = "code"
CODE_TYPES = ("view", "trigger")


def check_code(ctx: IsolationContext) -> list[CheckResult]:
    return with_passes(NAME, ctx.subjects, ctx.each_subject(lambda t: _judge(ctx, t)), "-",
                       "no view or trigger in the file")


def _judge(ctx: IsolationContext, tenant: str) -> list[CheckResult]:
    findings = []
    location = ctx.tenants[tenant]
    contents = read_contents(Path(location))
    for obj in (o for o in contents.objects if o.type in CODE_TYPES):
        quoted = '"' + obj.name.replace('"', '""') + '"'
        drop = f"DROP {obj.type.upper()} {quoted};"
        result = fail(NAME, tenant, f"{obj.type} {obj.name}",
                      f"a {obj.type} in the tenant file, which DocEX never has: it runs "
                      f"for whoever reads or writes the file; drop it, or accept it with "
                      f"--allow {obj.name}",
                      remedy=f"sqlite3 {shlex.quote(location)} {shlex.quote(drop)}")
        findings.append(ctx.judged(result, obj.name, f"{Path(location).parent.name}."
                                                     f"{obj.name}"))
    return findings
