"""What a split's source holds besides DocEX's tables, for ``split plan`` to report.

A split reads only the rows of DocEX's 11 tables, in a read-only snapshot: any
other object of the source schema or file (functions, procedures, views,
triggers, rules, policies, types, sequences, other tables and their indexes) is
never read, copied or run, and is reported so that nobody believes it was
split. Ignorable (``--ignore-extra-objects``), except where a DocEX table name
is not read as a plain table: a view, materialized view, foreign or
partitioned table of that name, or row-level security on it, changes what
reading it returns or runs.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.engine import Connection

from docex_ops.backends.sqlite_contents import DOCEX_TABLES, MASTER_SQL, classify, describe

_PG_LABELS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view",
              "S": "sequence", "f": "foreign table", "c": "composite type"}
_PG_UNREADABLE = ("p", "v", "m", "f", "c", "policy", "row security")
_PG_EXTRA_SQL = """
WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = %(s)s)
SELECT c.relname, c.relkind::text, NULL FROM pg_class c
 WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relkind NOT IN ('i', 'I', 't')
UNION ALL SELECT p.proname, 'function', NULL FROM pg_proc p
 WHERE p.pronamespace IN (SELECT oid FROM s)
UNION ALL SELECT t.typname, 'type', NULL FROM pg_type t
 WHERE t.typnamespace IN (SELECT oid FROM s) AND t.typtype IN ('b', 'd', 'e', 'r', 'm')
   AND t.typcategory <> 'A'
UNION ALL SELECT g.tgname, 'trigger', c.relname
  FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
 WHERE c.relnamespace IN (SELECT oid FROM s) AND NOT g.tgisinternal
UNION ALL SELECT r.rulename, 'rule', c.relname
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
 WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relkind = 'r'
UNION ALL SELECT p.polname, 'policy', c.relname
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace IN (SELECT oid FROM s)
UNION ALL SELECT c.relname, 'row security', NULL FROM pg_class c
 WHERE c.relnamespace IN (SELECT oid FROM s) AND (c.relrowsecurity OR c.relforcerowsecurity)
 ORDER BY 2, 1
"""


def pg_extra_objects(conn: Connection, schema: str) -> list[tuple[str, bool]]:
    """(description, ignorable) of every object of ``schema`` besides DocEX's tables."""
    found = []
    for name, kind, table in conn.exec_driver_sql(_PG_EXTRA_SQL, {"s": schema}):
        if kind == "r" and name in DOCEX_TABLES:
            continue
        unreadable = (table or name) in DOCEX_TABLES and kind in _PG_UNREADABLE
        found.append((f"{_PG_LABELS.get(kind, kind)} {name}"
                      + (f" on table {table}" if table else ""), not unreadable))
    return found


def sqlite_extra_objects(conn: sqlite3.Connection, prefix: str) -> list[tuple[str, bool]]:
    """The same for a SQLite file (``prefix``: its quoted schema name and a dot)."""
    found = classify(conn.execute(MASTER_SQL.replace("sqlite_master",
                                                     prefix + "sqlite_master")).fetchall())
    return ([(describe(*r), not (r[1] in DOCEX_TABLES and r[0] != "trigger"))
             for r in found.refused]
            + [(f"table {name!r}", True) for name in found.extra_names]
            + [(f"index {name!r}", True) for name, _ in found.extra_indexes])
