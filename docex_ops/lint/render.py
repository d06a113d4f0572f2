"""Each revision's SQL per dialect, rendered offline as the fast path replays it (the
online path's statements are the same ones, captured in offline mode; what cannot be
rendered offline is run on a throwaway database, see ``capture.py``), and the waivers
the revision carries."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from docex_ops.lint.cache import RenderCache
from docex_ops.migrate.scripts import MigrationScripts

# In a revision script: ``lint_waivers = {"rename": "why this rename is safe here"}``,
# or a comment beside the operation: ``# lint: allow rename: why``.
WAIVERS_ATTRIBUTE = "lint_waivers"
_WAIVER_COMMENT = re.compile(r"#\s*lint:\s*allow\s+(?P<rule>[\w-]+)(?:\s*:\s*(?P<why>[^#\n]*))?")


@dataclass(frozen=True)
class Rendered:
    revision: str
    dialect: str
    sql: str | None      # None: cannot be rendered offline (needs to read the database)
    error: str | None
    waivers: dict[str, str]
    key: str | None = None  # its render cache key (None: not cacheable)


def render_revisions(scripts: MigrationScripts, dialect: str, upto: str | None = None,
                     cache: RenderCache | None = None) -> list[Rendered]:
    """Every revision from the first to ``upto`` (default head), one rendering each,
    read back from ``cache`` when it holds the same revision rendered the same way."""
    order = scripts.order
    last = order.index(upto) + 1 if upto else len(order)
    cache = cache or RenderCache(scripts.location)
    rendered, previous = [], None
    for revision in order[:last]:
        key = cache.key(dialect, previous, revision)
        entry = cache.get(key)
        if entry is None:
            one = _render_one(scripts, dialect, previous, revision)
            cache.put(key, {"sql": one.sql, "error": one.error, "waivers": one.waivers})
        else:
            one = Rendered(revision, dialect, entry["sql"], entry["error"], entry["waivers"])
        rendered.append(replace(one, key=key))
        previous = revision
    return rendered


def _render_one(scripts: MigrationScripts, dialect: str, previous: str | None,
                revision: str) -> Rendered:
    module = scripts.script.get_revision(revision).module
    waivers = {str(k): str(v) for k, v in (getattr(module, WAIVERS_ATTRIBUTE, None) or {}).items()}
    source = getattr(module, "__file__", None)
    if source:
        for match in _WAIVER_COMMENT.finditer(Path(source).read_text("utf-8")):
            waivers.setdefault(match["rule"], (match["why"] or "").strip() or "(no reason)")
    try:
        sql = scripts.render_for_tenant(dialect, previous, revision)
    except Exception as exc:  # noqa: BLE001 - reported as a finding, never a crash
        offline = f"{type(exc).__name__}: {exc}"
        from docex_ops.lint.capture import CAPTURES  # only for what offline cannot render

        try:
            captured = CAPTURES.for_kind(dialect)(scripts, previous, revision)
        except Exception as online:  # noqa: BLE001 - as above
            offline += f"; run on a scratch database: {type(online).__name__}: {online}"
            captured = None
        if captured is None:
            return Rendered(revision, dialect, None, offline, waivers)
        sql = captured
    return Rendered(revision, dialect, sql, None, waivers)
