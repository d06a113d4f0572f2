"""What env.py runs: Alembic's context, handed over to docex-ops.

Three situations:
- docex-ops' own runner passes one tenant's connection in ``config.attributes``;
- docex-ops renders a step's SQL once for a dialect (``docex_render_dialect``);
- plain ``alembic`` CLI: visit every tenant (or ``-x tenant=a,b``) one by one,
  each in its own transaction, with the same per-tenant connection the runner uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from sqlalchemy.engine import Connection

from docex_ops.backends.scratch_tenant import scratch_tenant
from docex_ops.config.settings import load_settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.migrate.alembic_record import PlainAlembicRun
from docex_ops.migrate.kinds import KINDS
from docex_ops.migrate.plan import Selection, select_tenants
from docex_ops.migrate.scripts import (
    ATTR_CONNECTION,
    ATTR_FORCE,
    ATTR_RENDER_DIALECT,
    MigrationScripts,
)
from docex_ops.migrate.servers import control_backend
from docex_ops.migrate.tenant import describe_error
from docex_ops.schema.ddl import head_ddl
from docex_ops.schema.head import metadata


def run(context: EnvironmentContext) -> None:
    config = context.config
    x_args = context.get_x_argument(as_dictionary=True)
    force = bool(config.attributes.get(ATTR_FORCE)) or x_args.get("force") in ("1", "true")
    connection = config.attributes.get(ATTR_CONNECTION)
    if connection is not None:
        configure_connection(context, connection, force)
        context.run_migrations()
        return
    dialect = config.attributes.get(ATTR_RENDER_DIALECT)
    if dialect:
        context.configure(dialect_name=dialect, transactional_ddl=False, literal_binds=True,
                          render_as_batch=KINDS.for_kind(dialect).render_as_batch,
                          docex_force=force)
        context.run_migrations()
        return
    with expected_failures():
        # The process' manager (plain alembic is a process of its own; in a process that
        # already configured one differently, the manager refuses with a clear message).
        manager = TenantDatabaseManager(load_settings(x_args.get("config")))
        if getattr(config.cmd_opts, "autogenerate", False):
            _autogenerate(context, manager)
        else:
            _each_tenant(context, manager, _tenants(manager, x_args.get("tenant")), force)


@contextmanager
def expected_failures(who: str = "") -> Iterator[None]:
    """Turn an expected failure (bad config or tenant id, an unknown tenant or revision,
    a refused or locked tenant, an unreachable server) into Alembic's own CommandError:
    ``FAILED: <one line>`` and a nonzero exit, no traceback. Anything else is a bug and
    keeps its traceback."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except CommandError:
        raise
    except (ValueError, LookupError, RuntimeError, OSError, SQLAlchemyError) as exc:
        raise CommandError(who + describe_error(exc)) from None


def configure_connection(context: EnvironmentContext, connection: Connection,
                         force: bool, **extra: Any) -> None:
    """Unqualified names everywhere: the connection's route decides the tenant."""
    context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                      render_as_batch=KINDS.for_kind(connection.dialect.name).render_as_batch,
                      docex_force=force, **extra)


def _tenants(manager: TenantDatabaseManager, named: str | None) -> list[str]:
    """``-x tenant=a,b``: each must exist (select_tenants names those that do not, before
    anything runs); default every tenant."""
    ids = tuple(t.strip() for t in (named or "").split(",") if t.strip())
    return [t.tenant_id for t in select_tenants(manager, Selection(include=ids)).tenants]


def _each_tenant(context: EnvironmentContext, manager: TenantDatabaseManager,
                 tenants: list[str], force: bool) -> None:
    config = context.config
    rules = control_backend(manager)  # a tenant's schema or file name is the same everywhere
    recorded = _run_record(context, manager, tenants)
    starts = _offline_starts(context, manager, tenants)
    for tenant_id in tenants:
        location = rules.location(tenant_id)
        if context.is_offline_mode():
            start = None if starts is None else starts[tenant_id]
            if starts is not None and start is None:
                continue  # already there: no step to write
            kind = KINDS.for_kind(rules.kind)
            config.print_stdout(f"-- tenant {tenant_id}\n{kind.header(location)}")
            # starting_rev None keeps Alembic's own (the FROM of FROM:TO, or none).
            context.configure(dialect_name=rules.kind, literal_binds=True,
                              render_as_batch=kind.render_as_batch, docex_force=force,
                              starting_rev=start)
            with expected_failures(f"tenant {tenant_id}: "), context.begin_transaction():
                context.run_migrations()
            continue
        config.print_stdout(f"tenant {tenant_id} ({location})")
        backend = manager.backend_of(tenant_id)
        # expected_failures outermost: the run record sees the original error before it
        # becomes Alembic's one-line FAILED.
        with expected_failures(f"tenant {tenant_id}: "), \
                recorded.tenant(tenant_id, location) as watch, \
                backend.migration_connection(tenant_id) as conn:
            watch.before(backend.current_revision(conn))
            configure_connection(context, conn, force, on_version_apply=watch.on_version_apply)
            context.run_migrations()
            revision = backend.current_revision(conn)
            if revision is not None:
                backend.check_migrated(conn, tenant_id, revision, deep=True)
    recorded.finish()


def _run_record(context: EnvironmentContext, manager: TenantDatabaseManager,
                tenants: list[str]) -> PlainAlembicRun:
    """A run record and audit lines, as docex-ops' runner writes them (migrate runs)."""
    return PlainAlembicRun(manager, context.config.cmd_opts, tenants)


def _offline_starts(context: EnvironmentContext, manager: TenantDatabaseManager,
                    tenants: list[str]) -> dict[str, str | None] | None:
    """``upgrade TARGET --sql`` without a FROM: per tenant, the revision its script starts
    from (its own, read from the database; "base" for none), None for a tenant already
    at or beyond TARGET. None when the range was given (FROM:TO) or for other commands:
    then Alembic's own range is every tenant's."""
    from alembic.util import CommandError

    command = getattr(getattr(context.config, "cmd_opts", None), "cmd", None)
    if (not context.is_offline_mode() or command is None
            or getattr(command[0], "__name__", "") != "upgrade"):
        return None
    try:
        if context.get_starting_revision_argument():
            return None  # FROM:TO given: the operator's range
    except CommandError:
        pass  # no starting revision at all
    scripts = MigrationScripts(Path(context.script.dir))
    target = str(context.get_revision_argument() or "head")
    revisions = manager.topology.read_revisions(tenants)
    starts: dict[str, str | None] = {}
    for tenant_id in tenants:
        current = revisions.get(tenant_id)
        destination = scripts.resolve(target, current)
        ahead = scripts.position(destination) > scripts.position(current)
        starts[tenant_id] = (current or "base") if ahead else None
    return starts


def _autogenerate(context: EnvironmentContext, manager: TenantDatabaseManager) -> None:
    """Compare the models with a scratch tenant at head; the revision names no schema."""
    from docex_ops.migrate.scripts import head_revision
    from docex_ops.schema.ddl import version_table_ddl

    backend = control_backend(manager)
    with scratch_tenant(backend, "autogen") as (scratch, tenant_id):
        scratch.create(tenant_id, head_ddl(backend.kind) + version_table_ddl(head_revision()))
        with scratch.migration_connection(tenant_id) as conn:
            configure_connection(context, conn, force=False)
            context.run_migrations()
