"""SQLite's "connectivity": the storage root exists and docex-ops can write in it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from docex_ops.doctor.results import FAIL, PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext


def check_storage(ctx: DoctorContext) -> list[DoctorRow]:
    root = ctx.manager.settings.sqlite.storage_root
    target = str(root)
    if root.is_dir():
        if os.access(root, os.W_OK | os.X_OK):
            ctx.reachable.update(ctx.manager.servers)
            return [DoctorRow("connectivity", target, PASS, "storage root is writable")]
        ctx.unreachable.append(target)
        return [DoctorRow("connectivity", target, FAIL,
                          "storage root is not writable by this user: no tenant can be "
                          "created or migrated")]
    if root.exists():
        ctx.unreachable.append(target)
        return [DoctorRow("connectivity", target, FAIL, "storage root is not a directory")]
    parent = next((p for p in root.parents if p.exists()), None)
    if parent is not None and os.access(parent, os.W_OK | os.X_OK):
        ctx.reachable.update(ctx.manager.servers)
        return [DoctorRow("connectivity", target, WARN,
                          "storage root does not exist yet (the first provision creates it)")]
    ctx.unreachable.append(target)
    return [DoctorRow("connectivity", target, FAIL,
                      f"storage root does not exist and {parent} is not writable")]
