"""How ``migrate upgrade|downgrade|stamp|resume`` render a run and a dry run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from docex_ops import migrate as ops
from docex_ops.cli.common import OperationFailed, emit, info, state
from docex_ops.cli.migrate_lint import show_lint
from docex_ops.cli.output import problem_entry

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.migrate.plan import Plan
    from docex_ops.migrate.scripts import MigrationScripts


def render_dry_run(manager: TenantDatabaseManager, scripts: MigrationScripts, plan: Plan,
             action: str, target: str, options: ops.RunOptions, fmt: str | None,
             selection: ops.Selection) -> None:
    """The plan, with the refusals the real run would meet; exits as the run would."""
    from docex_ops.migrate.dry_run import verdict

    judged = verdict(manager, scripts, plan, options, selection.named(), on_lint=show_lint)
    refused = judged.refused
    rows = [{"tenant": s.tenant_id, "from": s.current, "to": s.target,
             "action": f"refused: {refused[s.tenant_id]}" if s.tenant_id in refused
             else action} for s in plan.steps]
    rows += [{"tenant": i.tenant_id, "from": i.revision, "to": None,
              "action": f"blocked: {why}"} for i, why in plan.blocked]
    rows += [{"tenant": i.tenant_id, "from": None, "to": None,
              "action": f"skipped: {why}"} for i, why in plan.skipped]
    emit(rows, fmt, payload={"action": action, "target": target, "dry_run": True,
                             "steps": plan.steps,
                             "already": [i.tenant_id for i in plan.already],
                             "blocked": [{"tenant": i.tenant_id, "reason": why}
                                         for i, why in plan.blocked],
                             "refused": [{"tenant": t, "reason": why}
                                         for t, why in sorted(refused.items())],
                             "tenants": rows},
         problems=[problem_entry(f"refused: {why}", t) for t, why in sorted(refused.items())]
         + [problem_entry(f"blocked: {why}", i.tenant_id) for i, why in plan.blocked])
    info(f"dry run: {len(plan.steps)} to {action}, {len(plan.already)} already there, "
         f"{len(plan.blocked)} blocked; nothing was changed")
    if judged.failure:
        raise OperationFailed(judged.failure)


def render_report(report: ops.RunReport, fmt: str | None, report_file: Path | None) -> None:
    rows: list[dict[str, Any]] = [
        {"tenant": r.tenant_id, "from": r.from_rev, "to": r.to_rev, "status": r.status,
         "seconds": r.seconds, "error": r.error} for r in report.results]
    rows += [{"tenant": t, "status": "not started"} for t in report.not_started]
    rows += [{"tenant": t, "status": "blocked", "error": why} for t, why in report.blocked]
    rows += [{"tenant": t, "status": "skipped", "error": why} for t, why in report.skipped]
    columns = ["tenant", "from", "to", "status", "seconds", "error"]
    if any(r.attempts > 1 for r in report.results):  # lock retries happened: show them
        attempts = {r.tenant_id: r.attempts for r in report.results}
        rows = [{**r, "attempts": attempts.get(r["tenant"])} for r in rows]
        columns.insert(4, "attempts")
    waves = report.waves
    if waves is not None:  # grouped by wave, in the order they ran
        rows = sorted(({"wave": waves.get(r["tenant"]), **r} for r in rows),
                      key=lambda r: r["wave"] or len(waves) + 1)
        columns.insert(0, "wave")
    servers = report.servers
    if servers is not None:  # several servers: grouped by server
        rows = sorted(({"server": servers.get(r["tenant"]), **r} for r in rows),
                      key=lambda r: (str(r["server"]), r["tenant"]))
        columns.insert(0, "server")
    payload = {"run_id": report.run_id, "action": report.action, "target": report.target,
               "ok": report.ok, "already_at_target": report.already,
               "seconds": round(report.seconds, 3), "tenants": rows}
    if report_file is not None:  # the same envelope as --format json, when the run ends
        state().result.files.append(report_file)
    emit(rows, fmt, columns=columns, payload=payload, problems=[
        problem_entry(f"{r.status}: {r.error}", r.tenant_id) for r in report.failed]
        + [problem_entry(f"blocked: {why}", t) for t, why in report.blocked])
    for result in report.results:
        if result.safety_backup:
            info(f"tenant {result.tenant_id}: backed up first to {result.safety_backup}")
    for tenant_id, why in report.skipped:
        info(f"tenant {tenant_id}: skipped: {why}")
    done = sum(r.status == "done" for r in report.results)
    info(f"run {report.run_id or '-'}: {done} migrated, {report.already} already at target, "
         f"{len(report.failed)} failed, {len(report.not_started)} not started, "
         f"{len(report.blocked)} blocked in {report.seconds:.2f}s")
    if not report.ok:
        names = [r.tenant_id for r in report.failed] + [t for t, _ in report.blocked]
        raise OperationFailed(f"migration incomplete; failed or blocked: {first(names)}; "
                              f"retry with `docex-ops migrate resume {report.run_id}`"
                              if report.run_id else "migration incomplete")


def first(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more"
                                       if len(names) > limit else "")
