"""Helpers that revision scripts import."""

from __future__ import annotations

from alembic import op


def require_force(reason: str) -> None:
    """Refuse a data-losing step unless the run was forced (``--force`` / ``-x force=1``)."""
    if not op.get_context().opts.get("docex_force"):
        raise RuntimeError(f"refusing to downgrade: {reason}; rerun with --force "
                           "(alembic: -x force=1) after taking a backup")
