"""``docex-ops doctor``: the preflight's rows; exit 1 on any FAIL (WARN alone is 0)."""

from __future__ import annotations

import click

from docex_ops.cli.common import OperationFailed, emit, format_option, info, is_json, state
from docex_ops.cli.options import example


@click.command("doctor", epilog=example("docex-ops --config docex.yaml doctor --format json"))
@format_option
def doctor_cmd(fmt: str | None) -> None:
    """Preflight before a deploy: PASS/WARN/FAIL per check; exit 1 on any FAIL.

    Checks connectivity per server (behind a pooler both the pooler and the direct path),
    privileges (CREATE, pg_dump readable), pg_dump/pg_restore versions against each
    server, replication settings where moves are configured, the connection budget,
    leftover scratch objects, tenants not at head and unversioned or foreign schemas.
    """
    from docex_ops.doctor.run import run_doctor

    report = run_doctor(state().manager)
    rows = [{"check": r.check, "target": r.target, "status": r.status, "detail": r.detail}
            for r in report.rows]
    emit(rows, fmt, payload={"checks": rows})
    if not is_json(fmt):
        info(f"doctor: {len(report.failed)} FAIL, {len(report.warned)} WARN, "
             f"{len(report.rows) - len(report.failed) - len(report.warned)} PASS")
    if not report.ok:
        raise OperationFailed(f"doctor: {len(report.failed)} check(s) failed: "
                              + "; ".join(f"{r.check} {r.target}" for r in report.failed[:5]))
