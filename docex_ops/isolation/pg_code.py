"""PostgreSQL: no code inside a tenant.

DocEX's schema has no functions, procedures, triggers or rules. Code in a
tenant schema runs with the rights of whoever calls it or writes the table
(the application, a restore, the operator), so it can carry rows anywhere that
caller reaches; a trigger or an expression (default, check, index, policy) that
calls a routine outside the tenant does the same from the tenant's tables. Each
is a FAIL with the DROP that removes it, unless accepted with ``--allow``.
"""

from __future__ import annotations

from docex_ops.isolation import pg_facts_code as code
from docex_ops.isolation import pg_remedy
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import CheckResult, fail, with_passes

NAME = "code"
_RUNS_AS = "runs with the rights of whoever calls it or writes the table (the application, " \
           "a restore, the operator)"


def check_code(ctx: IsolationContext) -> list[CheckResult]:
    findings = []
    for obj in code.tenant_code(ctx.require_catalog(), ctx.subject_locations()):
        names = pg_remedy.allow_names(obj.address)
        result = fail(NAME, ctx.tenant_of[obj.schema], pg_remedy.label(obj.address),
                      f"{_what(obj)}; drop it, or accept it with --allow {names[-1]}",
                      remedy=pg_remedy.drop(obj.address))
        findings.append(ctx.judged(result, *names))
    return with_passes(NAME, ctx.subjects, list(dict.fromkeys(findings)), "-",
                       "no routine, trigger or rule in the tenant, no expression calling "
                       "code outside it")


def _what(obj: code.CodeObject) -> str:
    kind = obj.address.type
    outside = obj.callee_schema not in ("", obj.schema)
    where = f" outside the tenant (in {obj.callee_schema})" if outside else ""
    if kind in ("function", "procedure", "aggregate"):
        return f"a {kind} in the tenant schema, which DocEX never has: it {_RUNS_AS}"
    if kind == "trigger":
        return f"a trigger, which DocEX never has: it runs {obj.callee}{where} on every write"
    if kind == "rule":
        return "a rule, which DocEX never has: it rewrites every statement on the table"
    if kind == "event trigger":
        return (f"an event trigger running {obj.callee} of the tenant on every DDL statement in "
                "the database, as whoever runs it (the operator included)")
    return f"calls {obj.callee}{where}: it {_RUNS_AS}"
