"""Guards at the moment of a destructive act: what refuses it, and what --force costs.

A drop, the swap at the end of a restore, a split into an existing tenant and a
downgrade that loses data each read what the tenant holds inside the very
transaction that acts, with the tenant locked against writers (see
docex_ops.backends.contents), and call an ``ActGuard`` with it:

- a foreign schema or file (none of DocEX's tables) is refused, even with --force;
- objects outside the tenant that depend on it are refused, even with --force,
  each named with the statement that removes the dependency;
- rows in any table (DocEX's or an application's) are refused without --force; with
  it, a safety backup is taken first, *while the act's lock is held*: no writer can
  add or change a row between the backup's snapshot and the act, so the backup holds
  every row the act deletes (readers, and so the backup, still get in).

If the tenant changed between the check and the act in a way the lock cannot stop
(a table created in the schema meanwhile, see backends/pg_guard), the act is rolled
back and tried again from the check: ``act_with_retries``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from docex_ops.backends.contents import (
    DependentsError,
    ForeignSchemaError,
    HoldsRowsError,
    TenantChangedError,
    TenantContents,
    describe_foreign,
)

T = TypeVar("T")
DEFAULT_SAFETY_DIR = Path("docex-safety-backups")
ATTEMPTS = 3
FORCE_HINT = "rerun with --force to accept that (docex-ops backs the tenant up first)"


@dataclass
class ActGuard:
    """The guard of one destructive act on one tenant (see the module docstring).

    ``matters``: whose rows count (a downgrade loses only DocEX's tables; a split
    judges those itself); default every table. ``backup`` takes the safety backup and
    returns its manifest.
    """

    tenant_id: str
    act: str                                   # "dropping it", "the restore", ...
    force: bool = False
    backup: Callable[[bool], Path] | None = None  # (unreadable) -> the backup's path
    hint: str = FORCE_HINT
    harm: str = "would delete them"
    matters: Callable[[str], bool] = lambda _table: True
    safety_backups: list[Path] = field(default_factory=list)
    seen: TenantContents | None = None

    @property
    def safety_backup(self) -> Path | None:
        """The backup taken before the act that went through (the last attempt's)."""
        return self.safety_backups[-1] if self.safety_backups else None

    def __call__(self, contents: TenantContents) -> None:
        self.seen = contents
        if self.check(contents):
            assert self.backup is not None
            self.safety_backups.append(self.backup(contents.unreadable is not None))

    def check(self, contents: TenantContents) -> bool:
        """Refuse (raise) or allow; True when the act needs the safety backup first."""
        who = f"tenant {self.tenant_id!r}"
        foreign = contents.foreign_tables
        if foreign is not None:
            raise ForeignSchemaError(
                f"{who}: {describe_foreign(contents.location, foreign)}: it is not a DocEX "
                f"tenant, so docex-ops refuses {self.act}, even with --force; if it is yours "
                "to remove, back it up and remove it by hand")
        if contents.dependents:
            raise DependentsError(
                f"{who}: {len(contents.dependents)} object(s) outside {contents.location} "
                f"depend on it, so {self.act} would reach them; refused even with --force. "
                "Remove each dependency first: " + "; ".join(str(d) for d in contents.dependents))
        if contents.unreadable is not None:  # its rows cannot be known: as if it held some
            if not self.force or self.backup is None:
                raise HoldsRowsError(f"{contents.unreadable}; {self.act} with --force deletes "
                                     "it anyway, after a copy of its bytes is kept")
            return True
        held = {t: n for t, n in contents.holders.items() if self.matters(t)}
        if not held:
            return False
        if not self.force or self.backup is None:
            rows = TenantContents(contents.location, held).describe_rows()
            raise HoldsRowsError(f"{who} holds rows ({rows}); {self.act} {self.harm}: "
                                 f"{self.hint}")
        return True


def act_with_retries(act: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run an act that checks before it acts; a tenant that changed between its check and
    its act (rolled back, nothing changed) is checked and acted on again."""
    for attempt in range(1, attempts + 1):
        try:
            return act()
        except TenantChangedError as exc:
            if attempt == attempts:
                raise TenantChangedError(f"{exc} (tried {attempts} times: rerun when it stops "
                                         "changing)") from exc
    raise AssertionError("unreachable")
