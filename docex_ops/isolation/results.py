"""What every isolation check returns: plain result rows, never printed here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

# The tenant column of a finding about the deployment as a whole (server, path).
DEPLOYMENT = "*"


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    check: str
    tenant: str          # tenant id, or DEPLOYMENT
    status: Status
    object: str          # the offending (or inspected) object, named as the database names it
    detail: str          # what is wrong and what to do, or what was verified
    server: str | None = None  # the server checked, when tenants are on several
    # What removes the finding, ready to paste: SQL on PostgreSQL (every identifier
    # quoted, never CASCADE), a shell command for a SQLite file; None on a PASS.
    remedy: str | None = None

    def row(self) -> dict[str, str | None]:
        row: dict[str, str | None] = {
            "check": self.check, "tenant": self.tenant, "status": str(self.status),
            "object": self.object, "detail": self.detail, "remedy": self.remedy}
        return row if self.server is None else row | {"server": self.server}


def fail(check: str, tenant: str, obj: str, detail: str, remedy: str | None = None
         ) -> CheckResult:
    return CheckResult(check, tenant, Status.FAIL, obj, detail, remedy=remedy)


def warn(check: str, tenant: str, obj: str, detail: str, remedy: str | None = None
         ) -> CheckResult:
    return CheckResult(check, tenant, Status.WARN, obj, detail, remedy=remedy)


def waived(result: CheckResult, pattern: str) -> CheckResult:
    """A finding ``--allow pattern`` accepts: kept as a PASS row, so the waiver shows."""
    return replace(result, status=Status.PASS, remedy=None,
                   detail=f"accepted with --allow {pattern}: {result.detail}")


def with_passes(check: str, subjects: Iterable[str], findings: list[CheckResult],
                obj: str, detail: str, also_flagged: Iterable[str] = ()) -> list[CheckResult]:
    """``findings`` plus one PASS row for every subject tenant that has none.

    ``also_flagged``: tenants a finding concerns although it is filed under another.
    """
    flagged = {r.tenant for r in findings} | set(also_flagged)
    passes = [CheckResult(check, t, Status.PASS, obj, detail)
              for t in subjects if t not in flagged]
    return sorted(findings + passes, key=lambda r: (r.tenant, -SEVERITY[r.status], r.object))
