"""The docex-ops command line: parses, calls an operation, renders its result.

Exit codes: 0 success, 1 the operation found or caused a failure, 2 usage,
configuration or connection error, 130 interrupted (see cli/errors.py).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from docex_ops import audit_trail
from docex_ops.cli.common import CliState, DocexGroup
from docex_ops.cli.options import Duration
from docex_ops.cli.output import FORMATS


@click.group(cls=DocexGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=None,
              help="DocEX config file (default: $DOCEX_CONFIG, ~/.docex/config.yaml, "
                   "else SQLite under ./storage).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format; json is stable for CI.")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar and no notes on stderr (errors, failure summaries and "
                   "--audit-stderr lines still show).")
@click.option("--actor", envvar="DOCEX_OPS_ACTOR", default=None, metavar="NAME",
              help="Operator named in the audit trail (default: $USER; env DOCEX_OPS_ACTOR).")
@click.option("--lock-timeout", "lock_timeout", type=Duration(), default=None,
              metavar="DURATION",
              help="How long to wait for a lock an application holds on a tenant before "
                   "reporting it locked and going on (500ms, 5s, 1min; default: "
                   "database.lock_timeout, else 5s).")
@click.option("--audit-stderr", "audit_stderr", is_flag=True,
              help="Also print each audit line on stderr (default: only into "
                   "logging.audit_file; on stderr when no file is configured and stderr "
                   "is not a terminal).")
@click.version_option(package_name="docex-ops")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, fmt: str, verbose: int, quiet: bool,
         actor: str | None, lock_timeout: float | None, audit_stderr: bool) -> None:
    """Operate DocEX tenant databases: one PostgreSQL schema or SQLite file per tenant."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else
                                         logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if actor is not None and not actor.strip():
        raise click.BadParameter("must not be empty", param_hint="--actor")
    audit_trail.set_actor(actor)
    # One bare JSON line per tenant change; -q hides progress, never the audit trail.
    audit_trail.show_on_stderr(audit_trail.STDERR_ALWAYS if audit_stderr else
                               audit_trail.STDERR_NEVER if sys.stderr.isatty() else
                               audit_trail.STDERR_WITHOUT_FILE)
    ctx.obj = CliState(config_path=config_path, fmt=fmt, quiet=quiet, verbose=verbose,
                       lock_timeout=lock_timeout)
    ctx.call_on_close(ctx.obj.close)


# Each command group is imported only when it runs: a `migrate status` in CI should
# not pay for loading backup or isolation code, nor `--help` for any of them (it lists
# these summaries, each the first paragraph of the command's own help; a test keeps
# them equal).
_LAZY = {
    "tenants": ("docex_ops.cli.tenants:tenants", "Provision, inspect and drop tenants."),
    "migrate": ("docex_ops.cli.migrate:migrate",
                "Alembic across every tenant: each tenant in one transaction, recorded per run."),
    "backup": ("docex_ops.cli.backup:backup",
               "Back up, verify and restore tenants; each archive has a JSON manifest beside "
               "it (revision, per-table row counts and checksums, archive sha256, tool "
               "versions)."),
    "verify-isolation": ("docex_ops.cli.isolation:verify_isolation_cmd",
                         "Prove that no tenant can reach another tenant's data, or the world."),
    "audit": ("docex_ops.cli.audit:audit",
              "The audit trail of tenant changes (logging.audit_file, JSON lines)."),
    "pools": ("docex_ops.cli.pools:pools",
              "Connection usage per tenant, and cleanup of idle tenant connections."),
    "split": ("docex_ops.cli.split:split",
              'Split a single-tenant DocEX database into tenants (DocEX guide, "Migration '
              'from single-tenant", step 3). Each basket goes to the tenant the mapping '
              "names, with its documents, metadata, file history, operations, dependencies, "
              "events and processing operations; processors and transport_routes are "
              "copied to every tenant."),
    "cleanup": ("docex_ops.cli.cleanup:cleanup_cmd",
                "Remove scratch objects no running operation holds."),
    "config": ("docex_ops.cli.config:config", "Check the configuration docex-ops would use."),
    "doctor": ("docex_ops.cli.doctor:doctor_cmd",
               "Preflight before a deploy: PASS/WARN/FAIL per check; exit 1 on any FAIL."),
    "report": ("docex_ops.cli.report:report_cmd",
               "One self-contained HTML page of the fleet: what a DBA looks at."),
    "metrics": ("docex_ops.cli.metrics:metrics",
                "The fleet as Prometheus metrics: tenants by state and revision, the last run."),
}
main.lazy_commands.update({name: path for name, (path, _) in _LAZY.items()})
main.lazy_summaries.update({name: summary for name, (_, summary) in _LAZY.items()})


def run(argv: list[str] | None = None) -> Any:  # pragma: no cover - thin wrapper
    return main.main(args=argv)
