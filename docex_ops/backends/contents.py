"""What a tenant holds, read under its lock at the moment of a destructive act.

Every act that can destroy data (a drop, the swap at the end of a restore, a split
into an existing tenant, a downgrade) reads a ``TenantContents`` inside the very
transaction that acts, with the tenant locked, and hands it to a *guard*: a callable
of the operation that refuses by raising (``GuardRefusal``), or lets the act go on,
possibly after a safety backup taken while the lock is still held. The backends
read and act; the operations decide (docex_ops.backends.guards).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from docex_ops.schema.names import TABLE_NAMES

VERSION_TABLE = "alembic_version"  # docex-ops' own: never counted as the tenant's data


class GuardRefusal(RuntimeError):
    """The act would destroy something it was not allowed to; nothing was changed."""


class HoldsRowsError(GuardRefusal):
    """The tenant holds rows the act would delete and the caller did not accept that."""


class DependentsError(GuardRefusal):
    """Objects outside the tenant depend on it: the act would reach them."""


class UnreadableFileError(GuardRefusal):
    """SQLite: the file is not a database SQLite can read; its rows cannot be counted."""


class ForeignSchemaError(GuardRefusal):
    """Named like a tenant, but another application's: none of DocEX's tables."""


class TenantChangedError(RuntimeError):
    """Objects appeared in (or began to depend on) the tenant between the check and the
    act; the act was rolled back, nothing changed. Rerunning checks again."""


@dataclass(frozen=True)
class Dependent:
    """An object outside the tenant that depends on one of the tenant's objects."""

    description: str  # "column c of table tenant_b.t"
    on: str           # "type tenant_a.dom"
    fix: str          # the statement that removes the dependency

    def __str__(self) -> str:
        return f"{self.description} (on {self.on}): {self.fix}"


@dataclass(frozen=True)
class TenantContents:
    """Every table of one tenant with its rows, and what outside depends on it."""

    location: str
    rows: Mapping[str, int]                          # every table but alembic_version
    dependents: tuple[Dependent, ...] = field(default=())
    unreadable: str | None = None  # SQLite: not a database, so its rows cannot be known

    @property
    def holders(self) -> dict[str, int]:
        """The tables that hold rows, DocEX's first, then the others by name."""
        held = {t: n for t, n in self.rows.items() if n}
        return dict(sorted(held.items(), key=lambda kv: (kv[0] not in TABLE_NAMES, kv[0])))

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def foreign_tables(self) -> list[str] | None:
        return foreign_tables(self.rows)

    def describe_rows(self, limit: int = 8) -> str:
        """``document 2 rows, orders 5 rows`` (the tables that hold rows)."""
        held = list(self.holders.items())
        text = ", ".join(f"{t} {n} row{'s' if n != 1 else ''}" for t, n in held[:limit])
        return text + (f" and {len(held) - limit} more tables" if len(held) > limit else "")


# A guard sees the contents under the lock and raises GuardRefusal to refuse.
Guard = Callable[[TenantContents], None]


def refuse_rows(contents: TenantContents) -> None:
    """The guard of a caller that accepts losing nothing: any row, any dependent refuses."""
    allow_rows(contents)
    if contents.holders:
        raise HoldsRowsError(f"{contents.location} holds rows: {contents.describe_rows()}")


def allow_rows(contents: TenantContents) -> None:
    """The guard of a caller that means to delete the rows (a scratch tenant, a test):
    still never anything outside the tenant."""
    if contents.dependents:
        raise DependentsError(f"{contents.location}: objects outside depend on it: "
                              + "; ".join(str(d) for d in contents.dependents))


def foreign_tables(tables: Iterable[str]) -> list[str] | None:
    """The tables of a schema or file that make it foreign, sorted: it holds none of
    DocEX's tables and at least one other (alembic_version counts as neither). None
    when it is not foreign."""
    names = set(tables) - {VERSION_TABLE}
    if names & set(TABLE_NAMES) or not names:
        return None
    return sorted(names)


def describe_foreign(location: str, tables: list[str], limit: int = 6) -> str:
    shown = ", ".join(tables[:limit]) + (f" and {len(tables) - limit} more"
                                         if len(tables) > limit else "")
    return f"{location} holds tables {shown} and none of DocEX's"


def refuse_to_provision_foreign(tenant_id: str, location: str, tables: Iterable[str]) -> None:
    """Provisioning (first access included) never fills another application's schema or
    file with DocEX's tables: ForeignSchemaError naming what it holds."""
    foreign = foreign_tables(tables)
    if foreign is not None:
        raise ForeignSchemaError(f"tenant {tenant_id!r}: {describe_foreign(location, foreign)}; "
                                 "it is not a DocEX tenant, so docex-ops does not provision "
                                 "into it (move or rename it, or use another tenant id)")
