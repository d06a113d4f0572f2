"""PostgreSQL: nothing in one tenant schema refers to another tenant's schema or to
a table in ``public``.

Two sources: ``pg_depend`` (foreign keys, views and materialized views through
their rewrite rules, rules, column defaults and their sequences, triggers,
policies, constraints, column types, SQL-standard function bodies) and the text
of function bodies, which PostgreSQL does not track (plpgsql, string-bodied SQL).
"""

from __future__ import annotations

import re

from docex_ops.isolation import pg_facts
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.pg_remedy import drop
from docex_ops.isolation.results import CheckResult, fail, warn, with_passes

NAME = "references"
PUBLIC = "public"

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = re.compile(rf"({_IDENT})\s*\.\s*({_IDENT})(\s*\()?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")

# A finding and the other tenant it involves (None: public or a shared schema).
Finding = tuple[CheckResult, str | None]


def check_references(ctx: IsolationContext) -> list[CheckResult]:
    conn = ctx.require_catalog()
    schemas = list(ctx.tenants.values())  # all: a reference INTO a subject counts too
    found = _dependency_findings(ctx, pg_facts.cross_schema_dependencies(conn, schemas))
    for source in pg_facts.function_sources(conn, schemas):
        found.extend(_function_findings(ctx, source))
    relevant = [(r, other) for r, other in dict.fromkeys(found)
                if r.tenant in ctx.subject_set or other in ctx.subject_set]
    return with_passes(NAME, ctx.subjects, [r for r, _ in relevant], "-",
                       "no reference to another tenant or to public",
                       also_flagged={other for _, other in relevant if other})


def _dependency_findings(ctx: IsolationContext, deps: list[pg_facts.Dependency]) -> list[Finding]:
    findings: list[Finding] = []
    for dep in deps:
        tenant = ctx.tenant_of[dep.schema]
        other = ctx.tenant_of.get(dep.ref_schema)
        remedy = drop(dep.address) if dep.address else None
        if other is not None:
            result = fail(NAME, tenant, dep.dependent,
                          f"refers to {dep.referenced} of tenant {other!r}: "
                          "a cross-tenant dependency; drop or rewrite it", remedy=remedy)
        elif dep.ref_schema == PUBLIC and dep.ref_is_relation:
            result = fail(NAME, tenant, dep.dependent,
                          f"refers to {dep.referenced} in public, shared by every tenant; "
                          "move the data into the tenant schema", remedy=remedy)
        else:
            result = warn(NAME, tenant, dep.dependent,
                          f"depends on {dep.referenced} outside the tenant schema; "
                          "confirm that shared object holds no tenant data")
        findings.append((result, other))
    return findings


def _function_findings(ctx: IsolationContext, source: pg_facts.FunctionSource) -> list[Finding]:
    tenant = ctx.tenant_of[source.schema]
    obj = f"function {source.schema}.{source.signature}"
    remedy = drop(source.address) if source.address else None
    findings: list[Finding] = []
    named: set[str] = set()
    for match in _QUALIFIED.finditer(source.body):
        qualifier, name = _unquote(match[1]), _unquote(match[2])
        named.add(qualifier)
        other = ctx.tenant_of.get(qualifier)
        if other is not None and qualifier != source.schema:
            findings.append((fail(NAME, tenant, obj, f"body names {qualifier}.{name} of tenant "
                                  f"{other!r}; a function must only touch its own tenant",
                                  remedy=remedy), other))
        elif qualifier == PUBLIC and match[3] is None:
            findings.append((fail(NAME, tenant, obj, f"body names {PUBLIC}.{name}, shared by "
                                  "every tenant; keep tenant data in the tenant schema",
                                  remedy=remedy), None))
        elif qualifier == PUBLIC:
            findings.append((warn(NAME, tenant, obj, f"body calls {PUBLIC}.{name}(); confirm it "
                                  "holds no tenant data"), None))
    for setting in source.config:
        key, _, value = setting.partition("=")
        others = [s for s in _path_schemas(value) if s in ctx.tenant_of and s != source.schema]
        if key == "search_path" and others:
            other = ctx.tenant_of[others[0]]
            findings.append((fail(NAME, tenant, obj, f"SET search_path={value} puts tenant "
                                  f"{other!r} on the path while it runs", remedy=remedy), other))
    for word in sorted({w.lower() for w in _WORD.findall(source.body)} - named):
        other = ctx.tenant_of.get(word)
        if other is not None and word != source.schema:
            findings.append((warn(NAME, tenant, obj, f"body mentions schema {word} of tenant "
                                  f"{other!r} (dynamic SQL?); check what it does"), other))
    return findings


def _unquote(ident: str) -> str:
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def _path_schemas(value: str) -> list[str]:
    return [_unquote(part.strip()) for part in value.split(",") if part.strip()]




_NAME_IN_TEXT = re.compile(rf"{_IDENT}")


def names_in(text: str) -> set[str]:
    """Every identifier a text could mean, quoted ones unquoted, others folded to lower
    case; words inside string literals count (dynamic SQL, dblink queries)."""
    return {_unquote(m) for m in _NAME_IN_TEXT.findall(text)}
