"""``docex-ops migrate lint``: every revision's SQL, rendered per backend and parsed with
PostgreSQL's own parser (pglast / libpg_query), checked against rules that know the lock
each statement takes and whether it rewrites or scans the table under that lock.

- ``statements.py``: parse rendered SQL into statements (pglast), the table each touches;
- ``locks.py``: PostgreSQL's documented lock level per command and sub-command;
- ``rules_*.py``: one module per rule family, listed in ``registry.py`` (the ids alone,
  without pglast, in ``rule_names.py``); ``batch.py``: what a SQLite batch rebuild does
  to each column, read from its row copy;
- ``render.py``: each revision's SQL per dialect, and the waivers the revision carries;
  ``capture.py``: what offline rendering refuses, run on a throwaway database;
  ``cache.py``: renderings and findings kept on disk, keyed by what they depend on;
- ``sizes.py``: the fleet's largest table per name (``pg_class.reltuples``), the scan rate;
- ``run.py``: ``lint_revisions`` -> ``LintReport``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops import lazy_exports

if TYPE_CHECKING:
    from docex_ops.lint.findings import Finding
    from docex_ops.lint.run import LintReport, lint_revisions
    from docex_ops.lint.sizes import FleetSizes, fleet_sizes

__all__ = ["Finding", "FleetSizes", "LintReport", "fleet_sizes", "lint_revisions"]
__getattr__ = lazy_exports(__name__, {
    "Finding": "docex_ops.lint.findings",
    "FleetSizes": "docex_ops.lint.sizes",
    "LintReport": "docex_ops.lint.run",
    "fleet_sizes": "docex_ops.lint.sizes",
    "lint_revisions": "docex_ops.lint.run",
})
