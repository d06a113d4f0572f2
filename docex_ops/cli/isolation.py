"""``docex-ops verify-isolation``: the isolation audit, rendered."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from docex_ops.cli.common import OperationFailed, emit, format_option, info, state
from docex_ops.cli.options import example, jobs_option, selection_options
from docex_ops.cli.output import problem_entry, render_table
from docex_ops.cli.progress import TenantProgress
from docex_ops.isolation import CHECKS, CheckResult, Status, placement, verify_isolation
from docex_ops.isolation.context import DEFAULT_JOBS
from docex_ops.isolation.results import DEPLOYMENT

if TYPE_CHECKING:
    from docex_ops.migrate.plan import Selection

COLUMNS = ("check", "tenant", "status", "object", "detail")
FLEET_COLUMNS = ("server", *COLUMNS)
SUMMARY_COLUMNS = ("server", "check", "PASS", "WARN", "FAIL")
FAILURES_ONLY_ABOVE = 50  # rows on a terminal before only failures are shown by default


@click.command("verify-isolation", epilog=example(
    "docex-ops verify-isolation --exclude scratch --fail-on warn"))
@selection_options
@click.option("--fail-on", type=click.Choice(["warn", "fail"]), default="fail", show_default=True,
              help="Exit 1 on any FAIL, or on any WARN too.")
@click.option("--allow", multiple=True, metavar="OBJECT",
              help="Accept a finding: an extra object in a tenant (NAME or SCHEMA.NAME), or the "
                   "object, role or publication a FAIL names; globs allowed (repeatable). An "
                   "accepted finding stays listed as a PASS saying so.")
@click.option("--check", "only", multiple=True, metavar="NAME",
              help="Run only this check (repeatable). Checks: "
                   + ", ".join(sorted({c.name for c in CHECKS})) + f"; with several servers "
                   f"{placement.NAME} (always run there).")
@jobs_option(help_text="Tenants the per-tenant checks (live routing, SQLite file reads) "
                      "judge at once, on each server.", default=DEFAULT_JOBS)
@click.option("--failures-only/--all-rows", default=None,
              help="A summary line per check plus the FAIL and WARN rows (JSON: results keep "
                   f"only those). Default: on for a table on a terminal with more than "
                   f"{FAILURES_ONLY_ABOVE} rows.")
@click.option("--record", is_flag=True,
              help="Store this run's results (counts per check and status, the first "
                   "FAIL/WARN findings) in the control schema/file, for `docex-ops metrics` "
                   "and the report.")
@format_option
def verify_isolation_cmd(selection: Selection, fail_on: str, allow: tuple[str, ...],
                         only: tuple[str, ...], jobs: int, failures_only: bool | None,
                         record: bool, fmt: str | None) -> None:
    """Prove that no tenant can reach another tenant's data, or the world.

    PostgreSQL: schema contents, references out of a tenant (foreign keys,
    views, rules, defaults and sequences, triggers, policies, function bodies)
    and into one from outside (reach_in: views, routines, triggers, rules,
    policies, defaults, publications), code inside a tenant, names shadowing
    the DocEX tables on the search path, the default search_path, who can
    create in a schema on a search path, privileges, default privileges, every
    role that reaches a tenant (isolation.allowed_roles lists the operators)
    and powerful logins, readers, pooler detection, live routing through the
    tenant manager with a rolled-back canary row, and a live probe that acts as
    a sample of tenant roles and tries to read and write other tenants and
    public (rolled back). SQLite: file location, sharing (links, inodes),
    permissions, sidecars, integrity, contents, and views or triggers in the
    file. The threat model: docs/isolation.md.

    One row per check per tenant (tenant '*' = the whole deployment), each
    PASS, WARN or FAIL with the object named; every FAIL carries the statement
    that removes it (the table ends with them, ready to paste; JSON: "remedy",
    where a WARN may carry one too).
    Exit 1 on any FAIL (or WARN with --fail-on warn), 2 on a usage or
    configuration error.

    Several servers: the checks run on each server for the tenants the
    directory places there, every row names its server (grouped by server),
    and a tenant missing from the server the directory names, found on a
    server the directory does not name, or on two servers, is a FAIL of the
    'placement' check.
    """
    # Tenants left out are still 'other tenants' that the judged ones must not reach.
    with TenantProgress("checks") as bar:
        report = verify_isolation(state().manager, selection.named(), allow, only,
                                  selection.exclude, progress=bar, jobs=jobs)
    record_id = None
    if record:
        from docex_ops.isolation.records import record_report

        record_id = record_report(state().manager, report)
    fmt = fmt or state().fmt
    rows = [r.row() for r in report.results]
    if failures_only is None:
        failures_only = fmt == "table" and len(rows) > FAILURES_ONLY_ABOVE and on_terminal()
    shown = [r for r in rows if r["status"] != Status.PASS] if failures_only else rows
    summary = report.per_check()
    payload = {"backend": report.backend, "tenants_checked": report.tenants_checked,
               "seconds": round(report.seconds, 3), "counts": report.counts(),
               "results": shown, "checks": summary}
    if report.servers:
        payload["servers"] = report.servers
    if record_id is not None:
        payload["record_id"] = record_id
    columns = FLEET_COLUMNS if report.servers else COLUMNS
    if fmt == "table" and failures_only:
        click.echo(render_table(summary, SUMMARY_COLUMNS[0 if report.servers else 1:]))
        click.echo("")
        click.echo(render_table(shown, columns) if shown else "no FAIL or WARN")
    else:
        emit(shown, fmt, columns, payload, problems=[
            problem_entry(f"{r.status} {r.check}: {r.object}: {r.detail}",
                    None if r.tenant == DEPLOYMENT else r.tenant, r.server)
            for r in report.results if r.status == Status.FAIL])
    if fmt == "table":
        script = remedies(report.results, report.backend)
        if script:
            click.echo("\n" + script)
    if record_id is not None:
        info(f"recorded as {record_id} (docex-ops metrics shows the last record)")
    counts = report.counts()
    where = f" ({len(report.servers)} servers)" if report.servers else ""
    info(f"{report.tenants_checked} tenant(s) on {report.backend}{where} in "
         f"{report.seconds:.2f}s: {counts['PASS']} PASS, {counts['WARN']} WARN, "
         f"{counts['FAIL']} FAIL")
    threshold = Status.WARN if fail_on == "warn" else Status.FAIL
    if report.fails_at(threshold):
        raise OperationFailed(f"isolation not proven: {counts['FAIL']} FAIL, "
                              f"{counts['WARN']} WARN (see the rows above)")


def on_terminal() -> bool:
    return sys.stdout.isatty()


def remedies(results: list[CheckResult], backend: str) -> str:
    """Every FAIL's remedy once, under comments naming the findings it removes. A WARN's
    (NOSUPERUSER for a superuser login, say) is a judgement call: JSON only, never here."""
    comment = "#" if backend == "sqlite" else "--"
    findings: dict[str, list[str]] = {}
    for r in (r for r in results if r.status == Status.FAIL and r.remedy):
        where = f"server {r.server}: " if r.server else ""
        findings.setdefault(r.remedy or "", []).append(
            f"{comment} {where}{r.status} {r.check} {r.tenant}: {r.object}")
    if not findings:
        return ""
    runner = "shell commands" if backend == "sqlite" else "psql, as the operator"
    lines = [f"{comment} Remedies ({runner}); each removes the findings named above it. "
             "Review before running."]
    for remedy, names in findings.items():
        lines += [*names, remedy]
    return "\n".join(lines)
