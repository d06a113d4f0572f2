"""``docex-ops verify-isolation``: the isolation audit, rendered."""

from __future__ import annotations

import click

from docex_ops.cli.common import OperationFailed, emit, format_option, info, state
from docex_ops.isolation import CHECKS, Status, placement, verify_isolation

COLUMNS = ("check", "tenant", "status", "object", "detail")
FLEET_COLUMNS = ("server", *COLUMNS)


@click.command("verify-isolation")
@click.option("--tenant", "tenant_ids", multiple=True, metavar="ID",
              help="Judge only this tenant (repeatable); others still count as 'other tenants'.")
@click.option("--fail-on", type=click.Choice(["warn", "fail"]), default="fail", show_default=True,
              help="Exit 1 on any FAIL, or on any WARN too.")
@click.option("--allow", multiple=True, metavar="OBJECT",
              help="Extra object tolerated in a tenant: NAME or SCHEMA.NAME, globs allowed "
                   "(repeatable).")
@click.option("--check", "only", multiple=True, metavar="NAME",
              help="Run only this check (repeatable). Checks: "
                   + ", ".join(sorted({c.name for c in CHECKS})) + f"; with several servers "
                   f"{placement.NAME} (always run there).")
@format_option
def verify_isolation_cmd(tenant_ids: tuple[str, ...], fail_on: str, allow: tuple[str, ...],
                         only: tuple[str, ...], fmt: str | None) -> None:
    """Prove that no tenant can reach another tenant's data.

    PostgreSQL: schema contents, cross-schema references (foreign keys, views,
    rules, defaults and sequences, triggers, policies, function bodies), names
    shadowing the DocEX tables on the search path, the default search_path,
    privileges and tenant roles, readers, pooler detection, and live routing
    through the tenant manager with a rolled-back canary row. SQLite: file
    location, sharing (links, inodes), permissions, sidecars, integrity and
    contents.

    One row per check per tenant (tenant '*' = the whole deployment), each
    PASS, WARN or FAIL with the object named. Exit 1 on any FAIL (or WARN with
    --fail-on warn), 2 on a usage or configuration error.

    Several servers: the checks run on each server for the tenants the
    directory places there, every row names its server (grouped by server),
    and a tenant missing from the server the directory names, found on a
    server the directory does not name, or on two servers, is a FAIL of the
    'placement' check.
    """
    report = verify_isolation(state().manager, tenant_ids, allow, only)
    payload = {"backend": report.backend, "tenants_checked": report.tenants_checked,
               "seconds": round(report.seconds, 3), "counts": report.counts(),
               "results": [r.row() for r in report.results]}
    if report.servers:
        payload["servers"] = report.servers
    emit([r.row() for r in report.results], fmt,
         FLEET_COLUMNS if report.servers else COLUMNS, payload)
    counts = report.counts()
    where = f" ({len(report.servers)} servers)" if report.servers else ""
    info(f"{report.tenants_checked} tenant(s) on {report.backend}{where} in "
         f"{report.seconds:.2f}s: {counts['PASS']} PASS, {counts['WARN']} WARN, "
         f"{counts['FAIL']} FAIL")
    threshold = Status.WARN if fail_on == "warn" else Status.FAIL
    if report.fails_at(threshold):
        raise OperationFailed(f"isolation not proven: {counts['FAIL']} FAIL, "
                              f"{counts['WARN']} WARN (see the rows above)")
