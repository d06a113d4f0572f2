"""Scratch objects killed operations left behind (what ``docex-ops cleanup`` removes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops.doctor.results import PASS, WARN, DoctorRow

if TYPE_CHECKING:
    from docex_ops.doctor.context import DoctorContext


def check_leftovers(ctx: DoctorContext) -> list[DoctorRow]:
    if ctx.unreachable:
        return []
    from docex_ops.cleanup.run import find_leftovers

    left = [item for item in find_leftovers(ctx.manager) if not item.held]
    if not left:
        return [DoctorRow("leftovers", "scratch objects", PASS, "none left behind")]
    names = [f"{item.kind} {item.name} ({item.where})" for item in left]
    return [DoctorRow("leftovers", "scratch objects", WARN,
                      f"{len(left)} left by interrupted operations: {', '.join(names[:5])}"
                      + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                      + "; `docex-ops cleanup` removes them")]
