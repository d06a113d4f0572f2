"""A doctor row and the report: PASS, WARN or FAIL per check and target."""

from __future__ import annotations

from dataclasses import dataclass, field

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass(frozen=True)
class DoctorRow:
    check: str
    target: str      # the server (name host:port), tool, tenant set, ... the row is about
    status: str      # PASS | WARN | FAIL
    detail: str


@dataclass
class DoctorReport:
    rows: list[DoctorRow] = field(default_factory=list)

    @property
    def failed(self) -> list[DoctorRow]:
        return [r for r in self.rows if r.status == FAIL]

    @property
    def warned(self) -> list[DoctorRow]:
        return [r for r in self.rows if r.status == WARN]

    @property
    def ok(self) -> bool:
        """No FAIL: a WARN alone does not stop a deploy."""
        return not self.failed
