"""DocEX before 2.9: the baseline layout.

``document_metadata`` still has ``profile`` and ``group_id``; object paths
are ``varchar(255)``. The definitions are frozen in docex_ops/schema/history.py (not
taken from schema.py), so this revision stays what it was when the model
moves on.

Revision ID: 0001_docex_pre_2_9
Revises:
"""

import sqlalchemy as sa
from alembic import op

from docex_ops.migrate.scripts import require_force
from docex_ops.schema.history import INDEXES, TABLES, pre_2_9_items

revision = "0001_docex_pre_2_9"
down_revision = None
branch_labels = None
depends_on = None
fast_path = True  # pure DDL: may be rendered once and replayed per tenant
# docex-ops refuses this downgrade without --force, and backs a tenant holding rows up first.
downgrade_loses_data = "dropping every DocEX table deletes all of the tenant's data"


def upgrade() -> None:
    for table in TABLES:
        op.create_table(table, *pre_2_9_items(table))
    for table, name, columns in INDEXES:
        op.create_index(name, table, [sa.text(c) if " " in c else c for c in columns])


def downgrade() -> None:
    require_force(downgrade_loses_data)
    for table in reversed(TABLES):
        op.drop_table(table)
