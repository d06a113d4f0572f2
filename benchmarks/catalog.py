"""What one DocEX tenant costs the PostgreSQL catalog, measured (figures for docs/scaling.md).

Provisions N tenants (default 200) with docex-ops into a fresh database and
prints, per tenant: rows added to pg_class and the other big catalogs, bytes
added to pg_catalog (pg_total_relation_size of every catalog table, before
and after VACUUM), relations, and the locks a pg_dump of the tenant takes.
Also prints the server's connection and lock budgets.

    .venv/bin/python benchmarks/catalog.py [--count 200]
"""

from __future__ import annotations

import argparse
import uuid
from contextlib import closing
from typing import Any

import psycopg2

from docex_ops.config.settings import settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
CATALOGS = ("pg_class", "pg_attribute", "pg_type", "pg_index", "pg_constraint", "pg_depend",
            "pg_attrdef", "pg_namespace")
_BYTES = ("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
          "ON n.oid = c.relnamespace WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r'")


def snapshot(cur: Any) -> dict[str, int]:
    found = {}
    for table in CATALOGS:
        cur.execute(f"SELECT count(*) FROM pg_catalog.{table}")
        found[table] = int(cur.fetchone()[0])
    cur.execute(_BYTES)
    found["bytes"] = int(cur.fetchone()[0])
    return found


def tenant_relations(cur: Any, schema: str) -> dict[str, int]:
    cur.execute("SELECT c.relkind, count(*) FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE n.nspname = %s GROUP BY 1", (schema,))
    return {str(kind): int(n) for kind, n in cur.fetchall()}


def backend_memory_per_tenant(cur: Any, schemas: list[str]) -> float:
    """Bytes a backend's caches grow by when it reads every table of one more tenant."""
    total = "SELECT sum(total_bytes) FROM pg_backend_memory_contexts"
    cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                "c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'", (schemas[0],))
    tables = [r[0] for r in cur.fetchall()]
    cur.execute(total)
    before = int(cur.fetchone()[0])
    for schema in schemas:
        for table in tables:
            cur.execute(f'SELECT 1 FROM "{schema}"."{table}" LIMIT 0')
    cur.execute(total)
    return (int(cur.fetchone()[0]) - before) / len(schemas)


def server_budgets(cur: Any) -> dict[str, int]:
    names = ("max_connections", "superuser_reserved_connections", "max_locks_per_transaction",
             "max_prepared_transactions")
    found = {}
    for name in names:
        cur.execute(f"SHOW {name}")
        found[name] = int(cur.fetchone()[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    database = f"docex_ops_bench_cat_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(dbname="postgres", **PG)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{database}"')
    try:
        TenantDatabaseManager.reset()
        manager = TenantDatabaseManager(settings_from_mapping({"database": {
            "type": "postgresql", "postgres": {**PG, "database": database}}}))
        manager.provision("warmup")  # the control schema is made once, not per tenant
        with closing(psycopg2.connect(dbname=database, **PG)) as conn:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("VACUUM")
            before = snapshot(cur)
            for i in range(args.count):
                manager.provision(f"t{i}")
            grown = snapshot(cur)
            cur.execute("VACUUM")
            vacuumed = snapshot(cur)
            relations = tenant_relations(cur, manager.backend.location("t0"))
            budgets = server_budgets(cur)
        with closing(psycopg2.connect(dbname=database, **PG)) as conn:  # a fresh backend
            conn.autocommit = True
            cached = backend_memory_per_tenant(
                conn.cursor(), [manager.backend.location(f"t{i}") for i in range(args.count)])
        n = args.count
        print(f"{n} tenants provisioned into {database}")
        for table in CATALOGS:
            print(f"  {table:14s} +{(grown[table] - before[table]) / n:7.1f} rows per tenant")
        raw_kib = (grown["bytes"] - before["bytes"]) / n / 1024
        vacuumed_kib = (vacuumed["bytes"] - before["bytes"]) / n / 1024
        print(f"  pg_catalog bytes +{raw_kib:7.1f} KiB per tenant as provisioned, "
              f"+{vacuumed_kib:7.1f} KiB after VACUUM")
        print(f"  relations of one tenant by relkind: {relations} "
              "(r table, i index, S sequence, t toast)")
        print(f"  locks a pg_dump of one tenant takes: {relations.get('r', 0)} "
              "(ACCESS SHARE per table)")
        print(f"  backend memory +{cached / 1024:7.1f} KiB per tenant whose tables one "
              "connection has read (relation and catalog caches, kept until it closes)")
        lock_slots = budgets["max_locks_per_transaction"] * (
            budgets["max_connections"] + budgets["max_prepared_transactions"])
        print(f"  server: {budgets}; shared lock table {lock_slots} slots")
    finally:
        TenantDatabaseManager.reset()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
