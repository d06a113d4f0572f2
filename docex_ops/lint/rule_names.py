"""The lint rules' ids without their code (which needs pglast): enough to check
``--allow`` and to read findings back from the render cache. ``registry.py`` pairs each
id with its check and refuses to load if the two lists ever differ."""

from __future__ import annotations

RULE_IDS = ("table-rewrite", "index-not-concurrent", "not-null-unvalidated",
            "constraint-not-valid", "drop", "rename", "enum-add-value", "vacuum-full",
            "lock-timeout", "sqlite-rebuild")
# Rules that --force waives at upgrade (the data loss it already stands for).
FORCE_WAIVES = frozenset({"drop"})
