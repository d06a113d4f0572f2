"""Lint revisions: render per dialect, parse, run the rules, apply waivers and sizes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

from docex_ops.lint.cache import RenderCache
from docex_ops.lint.findings import WARNING, Context, Finding, Statement
from docex_ops.lint.render import Rendered, render_revisions
from docex_ops.lint.rule_names import RULE_IDS
from docex_ops.migrate.scripts import MigrationScripts

if TYPE_CHECKING:  # the sizes' module reads the fleet (backends): not needed to lint
    from docex_ops.lint.sizes import FleetSizes


@dataclass
class LintReport:
    revisions: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def stopping(self) -> list[Finding]:
        """Error-level findings no waiver covers: they stop ``migrate upgrade``."""
        return [f for f in self.findings if f.stops]

    @property
    def ok(self) -> bool:
        return not self.stopping


def lint_revisions(scripts: MigrationScripts, dialects: Iterable[str],
                   start: str | None = None, end: str | None = None,
                   lock_timeout: float | None = None, sizes: FleetSizes | None = None,
                   allow: Iterable[str] = ()) -> LintReport:
    """Findings for the revisions after ``start`` up to ``end`` (default: all to head).

    Every earlier revision is read too (not reported) so a type change is judged from the
    column's real type. ``allow``: rule ids waived for this run (``--allow``)."""
    allowed = set(allow)
    unknown = allowed - set(RULE_IDS)
    if unknown:
        raise ValueError(f"unknown lint rule(s): {', '.join(sorted(unknown))} "
                         f"(rules: {', '.join(RULE_IDS)})")
    first = scripts.position(start)
    end_rev = scripts.resolve(end, None) if end else None
    report = LintReport(scripts.order[first:scripts.position(end_rev) if end_rev else None])
    cache = RenderCache(scripts.location)
    for dialect in dialects:
        revisions = render_revisions(scripts, dialect, end_rev, cache)
        for index, (rendered, found) in enumerate(zip(
                revisions, _findings(revisions, dialect, lock_timeout, cache), strict=True)):
            if index >= first:
                report.findings += [_concrete(_waive(f, rendered, allowed), sizes)
                                    for f in found]
    return report


def _findings(revisions: list[Rendered], dialect: str, lock_timeout: float | None,
              cache: RenderCache) -> list[list[Finding]]:
    """Each revision's findings before waivers and sizes; read back from the cache when
    every revision was rendered the same way and the lock_timeout is the same (the key
    holds the renderings' keys, so the rules' own code is in it too)."""
    key = cache.derived_key("findings", dialect, repr(lock_timeout),
                            *(r.key for r in revisions))
    entry = cache.get(key)
    if entry is not None:
        return [[Finding(**f) for f in found] for found in entry["findings"]]
    base = Context("", dialect, lock_timeout)
    findings = [_lint_one(rendered, base) for rendered in revisions]
    cache.put(key, {"findings": [[asdict(f) for f in found] for found in findings]})
    return findings


def _lint_one(rendered: Rendered, base: Context) -> list[Finding]:
    """The findings of one revision; ``base`` carries the schema on to the next."""
    # pglast and the rules only when the findings are not in the cache.
    from docex_ops.lint.model import learn
    from docex_ops.lint.registry import rules_for
    from docex_ops.lint.statements import parse

    ctx = Context(rendered.revision, rendered.dialect, base.lock_timeout,
                  columns=base.columns, validated_not_null=base.validated_not_null)
    if rendered.sql is None:
        return [_note(ctx, "unrendered", f"cannot be rendered offline ({rendered.error}); "
                      "the lint cannot see its statements")]
    try:
        statements = parse(rendered.sql)
    except Exception as exc:  # noqa: BLE001 - pglast's ParseError: reported, not a crash
        return [_note(ctx, "unparsed", f"PostgreSQL's parser refused the SQL: {exc}")]
    rules = rules_for(rendered.dialect)
    found: list[Finding] = []
    for stmt in statements:
        for rule in rules:
            found += rule.check(stmt, ctx)
        learn(stmt, ctx)
    return found


def _note(ctx: Context, rule: str, why: str) -> Finding:
    return Finding(rule, WARNING, ctx.revision, ctx.dialect, "", why,
                   "give the revision statements that render offline (fast_path)")


def _waive(finding: Finding, rendered: Rendered, allowed: set[str]) -> Finding:
    if finding.rule in rendered.waivers:
        return replace(finding, waived=f"in the revision: {rendered.waivers[finding.rule]}")
    if finding.rule in allowed:
        return replace(finding, waived="--allow")
    return finding


def _concrete(finding: Finding, sizes: FleetSizes | None) -> Finding:
    known = sizes.tables.get(finding.table) if sizes and finding.table else None
    if known is None or sizes is None:
        return finding
    worst = sizes.worst_seconds(known.rows) if finding.scans else None
    return replace(finding, rows=known.rows, worst_seconds=worst)


def statements_of(sql: str) -> list[Statement]:
    """Parsed statements of ``sql`` (for tests and tools)."""
    from docex_ops.lint.statements import parse

    return parse(sql)
