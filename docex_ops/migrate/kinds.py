"""What migrating differs in per database kind, found through one registry.

- how an offline script (``--sql``, ``alembic --sql``) points at its tenant:
  PostgreSQL sets the search_path to the tenant's schema, SQLite can only name
  the file the script is meant for;
- whether Alembic runs in batch mode (SQLite cannot ALTER most things in place).
"""

from __future__ import annotations

from dataclasses import dataclass

from docex_ops.backends.registry import KindRegistry


@dataclass(frozen=True)
class MigrationKind:
    header_template: str   # the script line that points at the tenant, {location} filled in
    render_as_batch: bool

    def header(self, location: str) -> str:
        return self.header_template.format(location=location)


POSTGRESQL = MigrationKind('SET search_path TO "{location}";', render_as_batch=False)
SQLITE = MigrationKind("-- database file: {location}", render_as_batch=True)

KINDS = KindRegistry[MigrationKind]("migration", {
    "postgresql": "docex_ops.migrate.kinds:POSTGRESQL",
    "sqlite": "docex_ops.migrate.kinds:SQLITE",
})
