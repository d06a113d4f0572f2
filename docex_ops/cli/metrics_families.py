"""The fleet snapshot as Prometheus metric families (rendering only: no reads here).

Names follow Prometheus' conventions: the ``docex_ops_`` prefix, base units in the name
(``_bytes``, ``_seconds``, ``_timestamp_seconds``), ``_total`` only on counters, HELP and
TYPE for each. With one server the ``server`` label is ``default`` (the name docex-ops
gives it), so dashboards work unchanged when a second server is added. Per-tenant series
carry the tenant id and nothing else of the tenant's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from docex_ops.config.servers import DEFAULT_SERVER

if TYPE_CHECKING:
    from docex_ops.observe.snapshot import BackupFact, FleetSnapshot
    from docex_ops.pools.report import PoolReport

CONNECTION_STATES = ("active", "idle", "idle_in_transaction", "other")
CHUNK_SAMPLES = 1000  # samples the writer holds as text at once


def _timestamp(moment: datetime) -> float:
    """Seconds since the epoch; a naive time is UTC (as docex-ops stores them)."""
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).timestamp()


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"docex_ops_{name}", doc, labels=list(labels))


def _streamed(name: str, doc: str, labels: tuple[str, ...],
              rows: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    """A gauge of one sample per tenant whose samples are made as the writer reads them
    (generate_latest and json_payload iterate a family's samples once): at 10,000 tenants
    no family holds 10,000 Sample objects, each with its label dict, at once."""
    family = _gauge(name, doc, labels)
    family.samples = cast("list[Sample]", (
        Sample(family.name, dict(zip(labels, values, strict=True)), value)
        for values, value in rows))
    return family


def families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    """Every family of the snapshot, in a stable order."""
    yield from _tenant_families(snapshot)
    yield from _run_families(snapshot)
    yield from _backup_families(snapshot)
    if snapshot.pools is not None:
        yield from _connection_families(snapshot.pools)
    yield from _isolation_families(snapshot)
    duration = _gauge("snapshot_duration_seconds", "How long reading the fleet took.")
    duration.add_metric([], snapshot.seconds or 0.0)
    taken = _gauge("snapshot_timestamp_seconds", "When the fleet was read.")
    taken.add_metric([], _timestamp(snapshot.taken_at))
    problems = _gauge("snapshot_problems",
                      "Parts of the fleet that could not be read (see --format json).")
    problems.add_metric([], len(snapshot.problems))
    yield from (duration, taken, problems)


def _server_of(snapshot: FleetSnapshot) -> Callable[[str], str]:
    """tenant -> its server's label (looked up, not a map of every tenant built here)."""
    servers = snapshot.servers or {}
    return lambda tenant: servers.get(tenant, DEFAULT_SERVER)


def _tenant_families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    status = snapshot.status
    server_of = _server_of(snapshot)
    head = _gauge("head_info", "The head revision of docex-ops' migration scripts.",
                  ("revision",))
    if status.head is not None:
        head.add_metric([status.head], 1)
    by_state = _gauge("tenants", "Tenants by migration state (current, behind, unversioned, "
                      "empty, unknown, locked, ...).", ("server", "state"))
    for (server, state), n in sorted(Counter(
            (server_of(t.tenant_id), t.state) for t in status.tenants).items()):
        by_state.add_metric([server, state], n)
    by_revision = _gauge("tenants_by_revision", "Tenants at each revision ((state) where a "
                         "tenant has none).", ("server", "revision"))
    for (server, revision), n in sorted(Counter(
            (server_of(t.tenant_id), t.revision or f"({t.state})")
            for t in status.tenants).items()):
        by_revision.add_metric([server, revision], n)
    behind_count = _gauge("tenants_behind_head", "Tenants at an older revision than head.",
                          ("server",))
    for server, n in sorted(Counter(server_of(t) for t in snapshot.behind_by).items()):
        behind_count.add_metric([server], n)
    behind = _streamed("tenant_revisions_behind", "How many revisions a tenant is behind "
                       "head (0: at head).", ("server", "tenant"), (
                           ((server_of(t.tenant_id), t.tenant_id),
                            snapshot.behind_by.get(t.tenant_id, 0))
                           for t in status.tenants
                           if t.state == "current" or t.tenant_id in snapshot.behind_by))
    sizes = _streamed("tenant_size_bytes", "A tenant's size on disk: PostgreSQL, its schema's "
                      "tables, indexes and TOAST as the catalog last measured them (VACUUM, "
                      "ANALYZE); SQLite, its file and sidecars.", ("server", "tenant"), (
                          ((server_of(tenant), tenant), snapshot.sizes[tenant])
                          for tenant in sorted(snapshot.sizes)))
    yield from (head, by_state, by_revision, behind_count, behind, sizes)


def _run_families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    info = _gauge("migration_run_info", "The last migration run (1).",
                  ("run_id", "action", "target", "status"))
    start = _gauge("migration_run_start_timestamp_seconds", "When the last run started.")
    duration = _gauge("migration_run_duration_seconds",
                      "How long the last run took (absent while it runs).")
    tenants = _gauge("migration_run_tenants", "The last run's tenants by their status.",
                     ("status",))
    failed = _gauge("migration_run_failed_tenant",
                    "A failed tenant of the last run (1; the first 50 by id).", ("tenant",))
    recent = _gauge("migration_runs", "The newest runs read, by status.", ("status",))
    if snapshot.runs:
        last = snapshot.runs[0]
        info.add_metric([last.run_id, last.action, last.target, last.status], 1)
        start.add_metric([], _timestamp(last.started_at))
        if last.seconds is not None:
            duration.add_metric([], last.seconds)
        for status, n in sorted(last.tenants.items()):
            tenants.add_metric([status], n)
        for f in last.failed:
            failed.add_metric([f.tenant_id], 1)
        for status, n in sorted(Counter(r.status for r in snapshot.runs).items()):
            recent.add_metric([status], n)
    yield from (info, start, duration, tenants, failed, recent)


def _backup_families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    if snapshot.backups is None:
        return
    facts = snapshot.backups

    def age(fact: BackupFact) -> float | None:
        verified = fact.newest_verified_at
        return None if verified is None else (snapshot.taken_at - verified).total_seconds()

    ages = _streamed("tenant_backup_age_seconds", "Age of a tenant's newest verified backup "
                     "(absent: none verifies).", ("tenant",), (
                         ((tenant,), seconds) for tenant in sorted(facts)
                         if (seconds := age(facts[tenant])) is not None))
    last = _streamed("tenant_last_backup_timestamp_seconds",
                     "When a tenant's newest backup finished (verified or not).", ("tenant",), (
                         ((tenant,), _timestamp(newest))
                         for tenant in sorted(facts)
                         if (newest := facts[tenant].newest_at) is not None))
    without = _gauge("tenants_without_verified_backup",
                     "Tenants with no backup in the folder that checks out.")
    stale = _gauge("tenants_with_stale_backup", "Tenants whose newest verified backup is "
                   "older than --stale-after, or missing.")
    stale_after = _gauge("backup_stale_after_seconds", "The --stale-after threshold.")
    missing = stale_count = 0
    for fact in facts.values():
        seconds = age(fact)
        missing += seconds is None
        stale_count += seconds is None or seconds > snapshot.stale_after_s
    without.add_metric([], missing)
    stale.add_metric([], stale_count)
    stale_after.add_metric([], snapshot.stale_after_s)
    yield from (ages, last, without, stale, stale_after)


def _connection_families(pools: PoolReport) -> Iterator[Metric]:
    sections = [(s.name, s.usage, s.capacity) for s in pools.servers]
    if not sections and pools.server is not None and pools.capacity is not None:
        sections = [(DEFAULT_SERVER, pools.server, pools.capacity)]
    states: Counter[tuple[str, str]] = Counter()
    for t in pools.tenants:
        server = t.server or DEFAULT_SERVER
        for state, n in zip(CONNECTION_STATES, (t.active, t.idle, t.idle_in_transaction,
                                                t.other), strict=True):
            states[(server, state)] += n
    for o in pools.other_connections:
        state = (o.state or "other").replace(" (aborted)", "").replace(" ", "_")
        states[(o.server or DEFAULT_SERVER, state if state in CONNECTION_STATES
                else "other")] += 1
    by_state = _gauge("server_connections", "Client connections a server shows in "
                      "pg_stat_activity, by state (all databases).", ("server", "state"))
    for server, _, _ in sections:
        for state in CONNECTION_STATES:
            by_state.add_metric([server, state], states[(server, state)])
    total = _gauge("server_client_connections", "Every client connection of a server, "
                   "this scrape's own included.", ("server",))
    max_conn = _gauge("server_max_connections", "The server's max_connections.", ("server",))
    available = _gauge("server_available_connections", "What ordinary roles may open "
                       "(max_connections minus the reserved ones).", ("server",))
    budget = _gauge("connection_budget", "The connection budget of one docex-ops process "
                    "(pool.max_total_connections, or derived from the server).", ("server",))
    worst = _gauge("connection_worst_case", "Tenants x (pool_size + max_overflow): what one "
                   "process could open at worst.", ("server",))
    for server, usage, capacity in sections:
        total.add_metric([server], usage.client_connections)
        max_conn.add_metric([server], usage.max_connections)
        available.add_metric([server], usage.available)
        if capacity.budget is not None:
            budget.add_metric([server], capacity.budget)
        worst.add_metric([server], capacity.worst_case)
    yield from (by_state, total, max_conn, available, budget, worst)
    if pools.pooler is not None:
        yield from _pgbouncer_families(pools)


def _pgbouncer_families(pools: PoolReport) -> Iterator[Metric]:
    view = pools.pooler
    assert view is not None
    labels = ("database", "user")
    clients = _gauge("pgbouncer_clients", "PgBouncer's clients per pool, by state.",
                     (*labels, "state"))
    servers = _gauge("pgbouncer_server_connections", "PgBouncer's server connections per "
                     "pool, by state.", (*labels, "state"))
    wait = _gauge("pgbouncer_max_wait_seconds", "How long the oldest waiting client of a "
                  "pool has waited.", labels)
    for p in view.pools:
        clients.add_metric([p.database, p.user, "active"], p.client_active)
        clients.add_metric([p.database, p.user, "waiting"], p.client_waiting)
        for state, n in (("active", p.server_active), ("idle", p.server_idle),
                         ("used", p.server_used)):
            servers.add_metric([p.database, p.user, state], n)
        wait.add_metric([p.database, p.user], p.maxwait_s)
    pool_size = _gauge("pgbouncer_default_pool_size", "PgBouncer's default_pool_size.")
    pool_size.add_metric([], view.default_pool_size)
    xacts = CounterMetricFamily("docex_ops_pgbouncer_transactions",
                                "Transactions PgBouncer has pooled since it started.",
                                labels=["database"])
    for database in sorted(view.stats):
        stats = view.stats_of(database)
        if stats is not None:
            xacts.add_metric([database], stats.transactions)
    yield from (clients, servers, wait, pool_size, xacts)


def _isolation_families(snapshot: FleetSnapshot) -> Iterator[Metric]:
    results = _gauge("isolation_results", "Results of the last `verify-isolation --record` "
                     "run, by check and status (pass, warn, fail).", ("check", "status"))
    findings = _gauge("isolation_finding", "A FAIL or WARN of the last recorded run, per "
                      "tenant (the first 50; tenant * is the deployment).",
                      ("check", "status", "tenant"))
    last = _gauge("isolation_last_run_timestamp_seconds",
                  "When the last `verify-isolation --record` run was recorded.")
    record = snapshot.isolation
    if record is not None:
        for (check, status), n in sorted(record.counts.items()):
            results.add_metric([check, status], n)
        for (check, status, tenant), n in sorted(Counter(
                (f.check, f.status, f.tenant_id) for f in record.findings).items()):
            findings.add_metric([check, status, tenant], n)
        last.add_metric([], _timestamp(record.recorded_at))
    yield from (results, findings, last)


class _OneFamily(Collector):
    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterator[Metric]:
        yield self.family


def exposition_chunks(snapshot: FleetSnapshot) -> Iterator[bytes]:
    """The Prometheus text exposition of ``snapshot`` in pieces of at most CHUNK_SAMPLES
    samples, each written by prometheus_client's own writer: the whole text, or a whole
    family of 10,000 tenants' samples, is never held at once."""
    from prometheus_client import generate_latest

    for family in families(snapshot):
        if family.type != "gauge":  # counters add _created lines: written whole (small)
            yield generate_latest(_OneFamily(family))
            continue
        samples = iter(family.samples)
        part = list(islice(samples, CHUNK_SAMPLES))
        yield generate_latest(_OneFamily(_piece(family, part)))
        while len(part) == CHUNK_SAMPLES:
            part = list(islice(samples, CHUNK_SAMPLES))
            if part:
                # A gauge's text is its HELP and TYPE lines (their text escaped: one line
                # each), then a line per sample: the family's header is written once.
                yield generate_latest(_OneFamily(_piece(family, part))).split(b"\n", 2)[2]


def _piece(family: Metric, samples: list[Sample]) -> Metric:
    piece = Metric(family.name, family.documentation, family.type, family.unit)
    piece.samples = samples
    return piece


def exposition(snapshot: FleetSnapshot) -> bytes:
    """The whole exposition (a textfile, a scrape's answer)."""
    return b"".join(exposition_chunks(snapshot))
