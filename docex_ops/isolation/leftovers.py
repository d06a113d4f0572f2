"""Scratch objects: never tenants, but data nobody looks after. Each one found is a
WARN: left by a killed operation (remove it with ``docex-ops cleanup``), or held by one
that is running (a restore copy also holds a tenant's rows)."""

from __future__ import annotations

from docex_ops.backends import leftovers
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, Status, warn

NAME = "leftovers"


def check_leftovers(ctx: IsolationContext) -> list[CheckResult]:
    found = leftovers.find({ctx.settings.directory_server: ctx.backend})
    if not found:
        return [CheckResult(NAME, DEPLOYMENT, Status.PASS, "-",
                            "no scratch schema, role, file or folder is left behind")]
    return [warn(NAME, DEPLOYMENT, item.name,
                 f"scratch {item.kind} of a {item.purpose} in use by a running operation"
                 if item.held else
                 f"scratch {item.kind} left by an interrupted {item.purpose}: not a tenant, "
                 "but it may hold a tenant's rows; remove it with `docex-ops cleanup`")
            for item in found]
