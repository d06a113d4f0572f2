"""The revision scripts: where they live, what head is, resolving targets and
rendering SQL once per step, and the helpers revision scripts import.

Linear history only (DocEX's is); a branched script directory is refused.

Alembic is imported only to run or render a revision: the order of the
revisions (what ``status`` and a no-op ``upgrade`` need) is read from the
scripts' text when they declare it plainly (see ``scan_order``).
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Module-level ``revision = "..."`` / ``down_revision = "..." | None`` (an annotation
# allowed, as Alembic's own template writes them).
_DECLARED = re.compile(
    r"^(?P<name>revision|down_revision|branch_labels|depends_on)\s*(?::[^=\n]+)?=\s*"
    r"(?P<value>None|'[^'\n]*'|\"[^\"\n]*\")\s*(?:#.*)?$", re.MULTILINE)


def alembic_config(ini_path: str | None = None) -> Config:
    """An Alembic Config pointing at docex-ops' own scripts (inside the package,
    so an installed docex-ops migrates without a checkout)."""
    from alembic.config import Config

    config = Config(ini_path) if ini_path else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@cache
def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError(f"no Alembic revisions found in {MIGRATIONS_DIR}")
    return head


def require_force(reason: str) -> None:
    """Refuse a data-losing step unless the run was forced (``--force`` / ``-x force=1``)."""
    from alembic import op

    if not op.get_context().opts.get(ATTR_FORCE):
        raise RuntimeError(f"refusing to downgrade: {reason}; rerun with --force "
                           "(alembic: -x force=1) after taking a backup")


# config.attributes keys our env.py understands (see docex_ops.migrate.alembic_env).
ATTR_CONNECTION = "connection"
ATTR_RENDER_DIALECT = "docex_render_dialect"
ATTR_FORCE = "docex_force"
ATTR_TENANT = "docex_tenant"


# Alembic's ``op`` and ``context`` are module-level proxies to the one active
# environment, so two threads inside Alembic at once corrupt each other (seen:
# a step rendered empty, a tenant stamped without its DDL). Every Alembic call
# holds this lock; the fast path replays already-rendered SQL without it.
ALEMBIC_LOCK = threading.Lock()

# Prefixed to every script rendered from base (see MigrationScripts._render). On SQLite
# the name is qualified with ``main``: a restore or a split runs the script with the
# archive or the source ATTACHed, and an unqualified name would reach into it.
BASE_VERSION_TABLE_SQL = {
    "sqlite": ("-- a downgrade to base leaves the version table, empty\n"
               "DROP TABLE IF EXISTS main.alembic_version;\n\n"),
    # The tenant's own schema is the whole search_path of a migration connection.
    "postgresql": ("-- a downgrade to base leaves the version table, empty\n"
                   "DROP TABLE IF EXISTS alembic_version;\n\n"),
}


class RevisionError(ValueError):
    """A target revision that does not exist or cannot be reached."""


def scan_order(versions: Path) -> list[str] | None:
    """The revision ids from the first to head, read from the scripts' text without
    importing them; None when any script does not declare them plainly, or the history
    is not one line (Alembic then reads it, and says what is wrong)."""
    down_of: dict[str, str | None] = {}
    for path in sorted(versions.glob("*.py")):
        if path.name.startswith(("__init__", ".#")):
            continue
        found = {m["name"]: m["value"] for m in _DECLARED.finditer(path.read_text("utf-8"))}
        if "revision" not in found or "down_revision" not in found or any(
                found.get(key, "None") != "None" for key in ("branch_labels", "depends_on")):
            return None
        revision, down = (_literal(found["revision"]), _literal(found["down_revision"]))
        if revision is None or revision in down_of:
            return None
        down_of[revision] = down
    next_of: dict[str | None, str] = {}
    for revision, down in down_of.items():
        if down in next_of or (down is not None and down not in down_of):
            return None  # a branch, or a parent that is not here
        next_of[down] = revision
    order, current = [], next_of.get(None)
    while current is not None:
        order.append(current)
        current = next_of.get(current)
    return order if len(order) == len(down_of) else None


def _literal(text: str) -> str | None:
    return None if text == "None" else text[1:-1]


@dataclass
class MigrationScripts:
    """One Alembic script directory, with its linear order and a render cache."""

    location: Path = MIGRATIONS_DIR
    _order: list[str] = field(default_factory=list, init=False, repr=False)
    _script: ScriptDirectory | None = field(default=None, init=False, repr=False)
    _rendered: dict[tuple[str, str | None, str], str | None] = field(
        default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def script(self) -> ScriptDirectory:
        if self._script is None:
            from alembic.script import ScriptDirectory

            self._script = ScriptDirectory.from_config(self.config())
            heads = self._script.get_heads()
            if len(heads) > 1:
                raise RevisionError(f"the history in {self.location} has several heads "
                                    f"({', '.join(heads)}); merge them first")
            self._order = [r.revision for r in reversed(list(self._script.walk_revisions()))]
        return self._script

    def config(self) -> Config:
        config = alembic_config()
        config.set_main_option("script_location", str(self.location))
        return config

    @property
    def order(self) -> list[str]:
        """Revision ids from the first to head."""
        if not self._order:
            self._order = scan_order(self.location / "versions") or []
        if not self._order:
            _ = self.script
        return self._order

    @property
    def head(self) -> str | None:
        return self.order[-1] if self.order else None

    def position(self, revision: str | None) -> int:
        """0 for base, i+1 for the i-th revision; RevisionError for unknown ids."""
        if revision is None:
            return 0
        try:
            return self.order.index(revision) + 1
        except ValueError:
            raise RevisionError(f"revision {revision!r} is not in {self.location}") from None

    def resolve(self, target: str, current: str | None) -> str | None:
        """An absolute revision id (None = base) for ``target`` seen from ``current``.

        Accepts head, base, full or partial ids, and relative steps (+1, -2).
        """
        if target == "head":
            return self.head
        if target == "base":
            return None
        if target[:1] in "+-" and target[1:].isdigit():
            index = self.position(current) + int(target)
            if not 0 <= index <= len(self.order):
                raise RevisionError(f"{target} from {current or 'base'} is outside the history")
            return self.order[index - 1] if index else None
        matches = [r for r in self.order if r.startswith(target)]
        if len(matches) != 1:
            raise RevisionError(f"revision {target!r} is {'ambiguous' if matches else 'unknown'}; "
                                "`docex-ops migrate history` lists the revisions")
        return matches[0]

    def path_is_fast(self, start: str | None, target: str | None) -> bool:
        """Every revision between start and target declares itself pure DDL."""
        low, high = sorted((self.position(start), self.position(target)))
        return all(getattr(self.script.get_revision(rev).module, "fast_path", False)
                   for rev in self.order[low:high])

    def data_loss(self, start: str | None, target: str | None) -> list[str]:
        """Why going down from ``start`` to ``target`` loses data: each step on the way
        whose script says so (``downgrade_loses_data = "<reason>"``)."""
        low, high = sorted((self.position(start), self.position(target)))
        reasons = (getattr(self.script.get_revision(rev).module, "downgrade_loses_data", None)
                   for rev in self.order[low:high])
        return [str(r) for r in reasons if r]

    def rendered_upgrade(self, dialect: str, start: str | None, target: str) -> str | None:
        """The SQL of start -> target for ``dialect``, rendered once; None if it cannot be.

        Offline rendering fails where a step needs to read the database (e.g.
        SQLite batch mode recreating a table); those tenants take the online path.
        """
        key = (dialect, start, target)
        with self._lock:
            if key in self._rendered:
                return self._rendered[key]
        sql: str | None = None
        if self.path_is_fast(start, target):
            try:
                sql = self._render(dialect, start, target)
            except Exception:  # noqa: BLE001 - any failure just means "use the online path"
                sql = None
        with self._lock:
            self._rendered[key] = sql
        return sql

    def render_for_tenant(self, dialect: str, start: str | None, target: str | None,
                          downgrade: bool = False, force: bool = False) -> str:
        """Offline SQL for one step, for ``--sql`` output (no BEGIN/COMMIT)."""
        return self._render(dialect, start, target, downgrade, force)

    def _render(self, dialect: str, start: str | None, target: str | None,
                downgrade: bool = False, force: bool = False) -> str:
        from alembic import command

        buffer = io.StringIO()
        config = self.config()
        config.output_buffer = buffer
        config.attributes[ATTR_RENDER_DIALECT] = dialect
        config.attributes[ATTR_FORCE] = force
        with ALEMBIC_LOCK:
            if downgrade:
                command.downgrade(config, f"{start}:{target or 'base'}", sql=True)
            else:
                command.upgrade(config, f"{start}:{target}" if start else str(target), sql=True)
        if start is None and not downgrade:
            # From base Alembic's script creates the version table, but a downgrade to
            # base leaves it behind, empty: a tenant "at base" may hold one, so the
            # script first drops the empty one (the revision read under the tenant's
            # lock said base, so it holds no row), in the step's own transaction.
            return BASE_VERSION_TABLE_SQL[dialect] + buffer.getvalue()
        return buffer.getvalue()
