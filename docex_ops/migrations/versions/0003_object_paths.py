"""Document object paths: S3 keys and full tenant paths outgrow 255 characters.

Revision ID: 0003_object_paths
Revises: 0002_docex_2_9_9
"""

import sqlalchemy as sa
from alembic import op

from docex_ops.migrate.scripts import require_force
from docex_ops.schema.history import pre_2_9_table

revision = "0003_object_paths"
down_revision = "0002_docex_2_9_9"
branch_labels = None
depends_on = None
fast_path = True
# docex-ops refuses this downgrade without --force, and backs a tenant holding rows up first.
downgrade_loses_data = "narrowing object paths to varchar(255) truncates longer paths"

# Rebuilding a SQLite table from reflection drops the DESC of these two
# indexes: the upgrade rebuilds from the frozen definitions (copy_from), the
# downgrade (reflection) rebuilds the two indexes as DocEX defines them.
DESC_INDEXES = (("idx_document_basket_created", "created_at DESC"),
                ("idx_document_basket_updated", "updated_at DESC"))

COLUMNS = {
    "document": (("source", False), ("path", False)),
    "file_history": (("original_path", True), ("internal_path", True)),
}


def _restore_desc_indexes() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for name, column in DESC_INDEXES:
        op.drop_index(name, table_name="document")
        op.create_index(name, "document", ["basket_id", sa.text(column)])


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        # Unchanged by 0002, so the pre-2.9 definitions are this revision's input.
        with op.batch_alter_table(table, copy_from=pre_2_9_table(table)) as batch:
            for name, nullable in columns:
                batch.alter_column(name, type_=sa.Text(), existing_type=sa.String(255),
                                   existing_nullable=nullable)


def downgrade() -> None:
    require_force(downgrade_loses_data)
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, nullable in columns:
                batch.alter_column(name, type_=sa.String(255), existing_type=sa.Text(),
                                   existing_nullable=nullable,
                                   postgresql_using=f"left({name}, 255)")
    _restore_desc_indexes()
