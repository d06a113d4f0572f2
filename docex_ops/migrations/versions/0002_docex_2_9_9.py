"""DocEX 2.9.9: drop document_metadata.profile, rename group_id to coordination_id.

DocEX shipped a script only for the drop; the rename keeps the values.

Revision ID: 0002_docex_2_9_9
Revises: 0001_docex_pre_2_9
"""

import sqlalchemy as sa
from alembic import op

from docex_ops.schema.history import pre_2_9_table

revision = "0002_docex_2_9_9"
down_revision = "0001_docex_pre_2_9"
branch_labels = None
depends_on = None
fast_path = True
# Read by `docex-ops migrate lint`: DocEX 2.9.9's own schema change, which DocEX's code of
# that release expects; deploy it with the release, not ahead of it.
lint_waivers = {
    "drop": "profile was never written by DocEX 2.9 (DocEX's own script drops it)",
    "rename": "DocEX 2.9.9 reads coordination_id; upgrade with the DocEX release",
}


def upgrade() -> None:
    # copy_from: SQLite rebuilds the table from the frozen definition instead of
    # reflecting it, so the step renders offline and keeps every index as it was.
    with op.batch_alter_table("document_metadata",
                              copy_from=pre_2_9_table("document_metadata")) as batch:
        batch.drop_column("profile")
        batch.alter_column("group_id", new_column_name="coordination_id",
                           existing_type=sa.Uuid())


def downgrade() -> None:
    # Lossless: profile comes back empty (its values were gone at upgrade), the
    # coordination ids go back under their old name.
    with op.batch_alter_table("document_metadata") as batch:
        batch.alter_column("coordination_id", new_column_name="group_id",
                           existing_type=sa.Uuid())
        batch.add_column(sa.Column("profile", sa.String(64)))

