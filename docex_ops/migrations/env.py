"""Alembic environment for every DocEX tenant; all logic lives in docex_ops.migrate.env."""

from alembic import context

from docex_ops.migrate.env import run

run(context)
