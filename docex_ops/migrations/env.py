"""Alembic environment for every DocEX tenant; all logic lives in docex_ops.migrate.alembic_env."""

from alembic import context

from docex_ops.migrate.alembic_env import run

run(context)
