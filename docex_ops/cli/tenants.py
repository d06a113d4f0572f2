"""``docex-ops tenants ...``: list, show, provision, drop."""

from __future__ import annotations

import click

from docex_ops import tenants as ops
from docex_ops.cli.common import OperationFailed, emit, format_option, info, progress, state
from docex_ops.output import human_bytes


@click.group()
def tenants() -> None:
    """Provision, inspect and drop tenants."""


@tenants.command("list")
@format_option
def list_cmd(fmt: str | None) -> None:
    """Every tenant that exists (discovered from schemas or files), with its revision."""
    found = ops.list_tenants(state().manager)
    rows = [{"tenant": t.tenant_id, "location": t.location, "revision": t.revision,
             "state": t.state, "tables": t.tables, "size": human_bytes(t.size_bytes)}
            for t in found]
    emit(rows, fmt, payload={"backend": state().settings.db_type,
                             "tenants": [dict(r, size_bytes=t.size_bytes)
                                         for r, t in zip(rows, found, strict=True)]})


@tenants.command("show")
@click.argument("tenant_id")
@format_option
def show_cmd(tenant_id: str, fmt: str | None) -> None:
    """One tenant: where it lives, its revision and its row counts."""
    manager = state().manager
    found = ops.find_tenant(manager, tenant_id)
    if found is None:
        raise LookupError(f"tenant {tenant_id!r} does not exist on {manager.settings.describe()}")
    counts = ops.count_rows(manager, tenant_id) if found.state != "empty" else {}
    rows = [{"table": name, "rows": n} for name, n in counts.items()]
    payload = {"tenant": found.tenant_id, "location": found.location, "state": found.state,
               "revision": found.revision, "size_bytes": found.size_bytes, "rows": counts}
    if (fmt or state().fmt) == "table":
        info(f"tenant {found.tenant_id} at {found.location}: {found.state}, "
             f"revision {found.revision or '-'}, {human_bytes(found.size_bytes)}")
    emit(rows, fmt, payload=payload)


@tenants.command("provision")
@click.argument("tenant_ids", nargs=-1, required=True)
@click.option("--verify", is_flag=True,
              help="After provisioning, write and delete a probe basket through the manager.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Tenants created at once, each in its own transaction.")
@click.option("--with-role", is_flag=True,
              help="PostgreSQL: also create a login-less role docex_t_<id> that owns only "
                   "the tenant's schema (the connecting user becomes a member).")
@format_option
def provision_cmd(tenant_ids: tuple[str, ...], verify: bool, jobs: int, with_role: bool,
                  fmt: str | None) -> None:
    """Create tenants (schema or file, all tables, stamped at head). Idempotent.

    Every id is checked against the tenant rules before anything is created.
    """
    manager = state().manager
    if with_role and manager.backend.kind != "postgresql":
        raise click.UsageError("--with-role needs PostgreSQL: SQLite has no roles")
    results = ops.provision_tenants(manager, tenant_ids, verify=verify, jobs=jobs,
                                    progress=lambda d, t: progress(d, t, "provisioning"))
    rows = [{"tenant": r.tenant_id, "location": r.location,
             "action": "created" if r.created else ("failed" if r.error else "exists"),
             "verified": r.verified, "seconds": r.seconds, "error": r.error} for r in results]
    if with_role:
        for row in rows:
            row["role"] = None if row["error"] else ops.ensure_tenant_role(manager,
                                                                          str(row["tenant"]))
    emit(rows, fmt)
    failed = [r.tenant_id for r in results if not r.ok or r.verified is False]
    if failed:
        raise OperationFailed(f"{len(failed)} tenant(s) failed: {', '.join(failed)}")


@tenants.command("drop")
@click.argument("tenant_id")
@click.option("--yes", is_flag=True, help="Confirm: the schema or file is deleted.")
@click.option("--force", is_flag=True, help="Drop even if the tenant holds rows.")
@click.option("--dry-run", is_flag=True, help="Say what would be dropped, drop nothing.")
def drop_cmd(tenant_id: str, yes: bool, force: bool, dry_run: bool) -> None:
    """Drop one tenant's schema or file. Refuses without --yes, and refuses
    tenants that hold rows unless --force."""
    manager = state().manager
    found = ops.find_tenant(manager, tenant_id)
    if found is None:
        raise LookupError(f"tenant {tenant_id!r} does not exist on {manager.settings.describe()}")
    if dry_run:
        click.echo(f"would drop tenant {found.tenant_id} at {found.location}")
        return
    if not yes:
        raise click.UsageError(f"dropping tenant {tenant_id!r} ({found.location}) deletes it; "
                               "add --yes to confirm")
    ops.drop_tenant(manager, tenant_id, allow_data=force)
    click.echo(f"dropped tenant {found.tenant_id} ({found.location})")
