"""Waves: migrate the selected tenants in growing groups (``--waves 1,5%,25%,100%``),
checking the last wave's failure rate before starting the next.

Each size is cumulative, as a rollout is described ("1 tenant, then up to 5% of them,
then 25%, then all"): a count or a percentage of the selected tenants. ``--canary N``
is the first wave. ``--order`` decides who goes first: ``size`` (smallest first, so
the first waves are the quick ones), ``name``, or a file of tenant ids."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.tenant import TenantStep


def parse_waves(spec: str) -> tuple[str, ...]:
    """``"1,5%,25%,100%"`` checked and kept as text (it is recorded with the run)."""
    parts = tuple(p.strip() for p in spec.split(",") if p.strip())
    for part in parts:
        number = part[:-1] if part.endswith("%") else part
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"wave {part!r}: a count or a percentage (5%)") from None
        if value <= 0 or (part.endswith("%") and value > 100) or (
                not part.endswith("%") and not value.is_integer()):
            raise ValueError(f"wave {part!r}: a whole count > 0 or a percentage in (0, 100]")
    if not parts:
        raise ValueError("--waves needs at least one size")
    return parts


def split_waves(steps: Sequence[TenantStep], spec: Sequence[str], canary: int = 0
                ) -> list[list[TenantStep]]:
    """The steps cut into waves, in order; the canary first; every step in some wave."""
    total = len(steps)
    bounds = [min(canary, total)] if canary else []
    for size in spec:
        bound = (math.ceil(total * float(size[:-1]) / 100) if size.endswith("%")
                 else int(size))
        bounds.append(min(max(bound, bounds[-1] if bounds else 0), total))
    bounds.append(total)  # whatever the last size leaves goes in a last wave
    waves, start = [], 0
    for bound in bounds:
        if bound > start:
            waves.append(list(steps[start:bound]))
            start = bound
    return waves


def order_steps(manager: TenantDatabaseManager, steps: list[TenantStep], order: str | None
                ) -> list[TenantStep]:
    """``size``: smallest first (one catalog pass with sizes); ``name``; or a file of
    tenant ids, the tenants it does not list after, in plan order."""
    if not order:
        return steps
    if order == "name":
        return sorted(steps, key=lambda s: s.tenant_id)
    if order == "size":
        sizes = {t.tenant_id: t.size_bytes or 0 for t in manager.discover(with_size=True).tenants}
        return sorted(steps, key=lambda s: (sizes.get(s.tenant_id, 0), s.tenant_id))
    names = [line.split("#", 1)[0].strip()
             for line in Path(order).read_text("utf-8").splitlines()]
    rank = {name: i for i, name in enumerate(n for n in names if n)}
    return sorted(steps, key=lambda s: rank.get(s.tenant_id, len(rank)))


def failure_rate(failed: int, ran: int) -> float:
    return failed / ran if ran else 0.0
