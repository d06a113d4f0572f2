"""PostgreSQL catalog facts for the isolation audit: one set-based query per fact.

Every function takes the schemas to inspect as one array parameter, so the
cost is one round trip whatever the number of tenants. Judging the facts
(PASS / WARN / FAIL) is the job of ``docex_ops.isolation``; nothing here
decides what is a violation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from docex_ops.backends.postgres import PostgresBackend
from docex_ops.isolation.pg_facts_access import RELATION_KIND
from docex_ops.isolation.pg_facts_code import (
    LEAVING_THE_SCHEMA,
    SUBJECT_SCHEMAS,
    SYSTEM_SCHEMAS,
    Dependency,
    ObjectAddress,
    address,
    dependency_edges,
    rows,
)

__all__ = ["SYSTEM_SCHEMAS", "Dependency"]  # re-exported: the checks read them from here


@dataclass(frozen=True)
class SchemaObject:
    schema: str
    name: str
    kind: str  # relkind letter, "function" or "type"


@dataclass(frozen=True)
class FunctionSource:
    schema: str
    signature: str
    language: str
    body: str
    config: tuple[str, ...]  # proconfig entries, e.g. "search_path=tenant_b"
    address: ObjectAddress | None = None  # what DROP names



@dataclass(frozen=True)
class Grant:
    schema: str
    object: str   # "" for the schema itself, else the relation name
    grantee: str  # role name, or "PUBLIC"
    privilege: str
    kind: str = "table"  # schema, table (views and foreign tables too) or sequence


@dataclass(frozen=True)
class Ownership:
    schema: str
    object: str   # "" for the schema itself
    owner: str
    kind: str = "table"  # schema, table, view, materialized view, foreign table, sequence


@dataclass(frozen=True)
class RoleGraph:
    existing: frozenset[str]                 # which of the asked-for roles exist
    superusers: frozenset[str]
    member_of: dict[str, frozenset[str]]     # role -> roles it directly belongs to


@dataclass(frozen=True)
class RoutingProbe:
    current_schema: str | None
    path: tuple[str, ...]                   # current_schemas(false)
    resolved: dict[str, str | None]         # unqualified DocEX table -> schema it resolves to
    canary_schema: str | None               # where the canary row landed
    wrote_to: tuple[str, ...]               # every "schema.table" this transaction wrote to
    copiers: tuple[str, ...] = ()           # DROP of each trigger and rule on docbasket


@dataclass(frozen=True)
class ServerFacts:
    server_port: int
    configured_search_path: str
    search_path_source: str
    current_user: str
    pooler_clients: tuple[str, ...]         # application names that look like a pooler
    database: str = ""                      # current_database(), for ALTER DATABASE remedies


_OBJECTS_SQL = """
SELECT n.nspname, c.relname, c.relkind::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind NOT IN ('i', 'I', 't')
UNION ALL
SELECT n.nspname, p.proname, 'function'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT n.nspname, t.typname, 'type'
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND t.typtype IN ('e', 'd', 'r', 'm')
"""

_FUNCTIONS_SQL = """
SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       l.lanname, coalesce(p.prosrc, ''), coalesce(p.proconfig, '{}'),
       a.type, a.object_names, a.object_args
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
  CROSS JOIN LATERAL pg_identify_object_as_address('pg_proc'::regclass, p.oid, 0) a
 WHERE n.nspname = ANY(%(schemas)s) AND l.lanname NOT IN ('c', 'internal')
 ORDER BY 1, 2
"""

_NAMED_OBJECTS_SQL = """
SELECT n.nspname, c.relname, c.relkind::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relname = ANY(%(names)s)
   AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION ALL
SELECT n.nspname, p.proname, 'function'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY(%(schemas)s) AND p.proname = ANY(%(names)s)
 ORDER BY 1, 2
"""

_GRANTS_SQL = """
SELECT n.nspname, '', coalesce(r.rolname, 'PUBLIC'), a.privilege_type, 'schema'
  FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND a.grantee <> n.nspowner
UNION ALL
SELECT n.nspname, c.relname, coalesce(r.rolname, 'PUBLIC'), a.privilege_type,
       CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL aclexplode(c.relacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND a.grantee <> c.relowner
"""

_OWNERS_SQL = f"""
SELECT n.nspname, '', pg_get_userbyid(n.nspowner), 'schema'
  FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), {RELATION_KIND}
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
"""

_ROLES_SQL = """
SELECT (SELECT coalesce(array_agg(rolname), '{}') FROM pg_roles WHERE rolname = ANY(%(roles)s)),
       (SELECT coalesce(array_agg(rolname), '{}') FROM pg_roles WHERE rolsuper)
"""

_MEMBERSHIP_SQL = """
SELECT m.rolname, g.rolname
  FROM pg_auth_members a
  JOIN pg_roles m ON m.oid = a.member
  JOIN pg_roles g ON g.oid = a.roleid
"""

_SERVER_SQL = """
WITH configured AS (
  -- ALTER ROLE/DATABASE ... SET search_path, most specific first; read from the catalog,
  -- not from this session, which may predate the change.
  SELECT substr(c, length('search_path=') + 1) AS path,
         CASE WHEN s.setdatabase <> 0 AND s.setrole <> 0 THEN 'ALTER ROLE ... IN DATABASE'
              WHEN s.setrole <> 0 THEN 'ALTER ROLE' ELSE 'ALTER DATABASE' END AS source
    FROM pg_db_role_setting s CROSS JOIN LATERAL unnest(s.setconfig) c
   WHERE c LIKE 'search_path=%%'
     AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
     AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))
   ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC
   LIMIT 1
)
SELECT current_setting('port')::int,
       coalesce((SELECT path FROM configured),
                (SELECT reset_val FROM pg_settings WHERE name = 'search_path')),
       coalesce((SELECT source FROM configured), 'server configuration'),
       current_user,
       ARRAY(SELECT DISTINCT application_name FROM pg_stat_activity
              WHERE datname = current_database()
                AND application_name ~* '(pgbouncer|pgcat|odyssey|pgpool|supavisor)'
              ORDER BY 1),
       current_database()
"""

_ROUTE_SQL = """
SELECT current_schema(), current_schemas(false)::text[],
       ARRAY(SELECT t || '=' || coalesce(n.nspname, '')
               FROM unnest(%(tables)s::text[]) t
               LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(t))
               LEFT JOIN pg_namespace n ON n.oid = c.relnamespace)
"""

# The unqualified name, as DocEX writes it: the connection's route decides where it lands.
_CANARY_INSERT_SQL = """
INSERT INTO docbasket (id, name, description, storage_config, status, created_at, updated_at)
VALUES (%(id)s, %(name)s, %(description)s, '{}', 'canary', %(now)s, %(now)s)
"""

_CANARY_SQL = """
SELECT (SELECT n.nspname FROM docbasket d
          JOIN pg_class c ON c.oid = d.tableoid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE d.id = %(id)s),
       -- The tables this transaction wrote to: each holds a RowExclusiveLock until the
       -- rollback. pg_locks is as small as the server's lock table, where
       -- pg_stat_xact_user_tables would scan every relation of every tenant.
       ARRAY(SELECT DISTINCT n.nspname || '.' || c.relname
               FROM pg_locks l
               JOIN pg_class c ON c.oid = l.relation
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'
                AND l.mode = 'RowExclusiveLock' AND c.relkind IN ('r', 'p', 'f')
              ORDER BY 1),
       -- What could have copied it: the triggers and rules on the tenant's docbasket.
       ARRAY(SELECT format('DROP TRIGGER %%I ON %%I.%%I;', t.tgname, n.nspname, c.relname)
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = to_regclass('docbasket') AND NOT t.tgisinternal
             UNION ALL
             SELECT format('DROP RULE %%I ON %%I.%%I;', r.rulename, n.nspname, c.relname)
               FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = to_regclass('docbasket') AND r.rulename <> '_RETURN')
"""


_rows = rows


def schema_objects(conn: Connection, schemas: Sequence[str]) -> list[SchemaObject]:
    """Relations (not indexes), functions and standalone types inside ``schemas``."""
    return [SchemaObject(str(s), str(n), str(k))
            for s, n, k in _rows(conn, _OBJECTS_SQL, schemas=list(schemas))]


def cross_schema_dependencies(conn: Connection, schemas: Sequence[str]) -> list[Dependency]:
    """Every pg_depend edge from an object in ``schemas`` to a non-system other schema."""
    return dependency_edges(conn, SUBJECT_SCHEMAS, LEAVING_THE_SCHEMA, schemas=list(schemas),
                            system=list(SYSTEM_SCHEMAS))


def function_sources(conn: Connection, schemas: Sequence[str]) -> list[FunctionSource]:
    """Bodies and SET clauses of the non-C functions in ``schemas`` (pg_depend cannot see
    inside plpgsql or string-bodied SQL functions)."""
    return [FunctionSource(str(s), str(sig), str(lang), str(body), tuple(cfg), address(k, n, a))
            for s, sig, lang, body, cfg, k, n, a in _rows(conn, _FUNCTIONS_SQL,
                                                           schemas=list(schemas))]


def objects_named(conn: Connection, schemas: Sequence[str],
                  names: Sequence[str]) -> list[SchemaObject]:
    """Relations and functions in ``schemas`` whose name is one of ``names``."""
    return [SchemaObject(str(s), str(n), str(k))
            for s, n, k in _rows(conn, _NAMED_OBJECTS_SQL, schemas=list(schemas),
                                 names=list(names))]


def existing_schemas(conn: Connection, schemas: Sequence[str]) -> list[str]:
    return [str(r[0]) for r in _rows(conn, "SELECT nspname FROM pg_namespace "
                                           "WHERE nspname = ANY(%(s)s) ORDER BY 1",
                                     s=list(schemas))]


def grants(conn: Connection, schemas: Sequence[str]) -> list[Grant]:
    """Explicit privileges on ``schemas`` and their relations, owners' own rights left out."""
    return [Grant(str(s), str(o), str(g), str(p), str(k))
            for s, o, g, p, k in _rows(conn, _GRANTS_SQL, schemas=list(schemas))]


def owners(conn: Connection, schemas: Sequence[str]) -> list[Ownership]:
    return [Ownership(str(s), str(o), str(w), str(k))
            for s, o, w, k in _rows(conn, _OWNERS_SQL, schemas=list(schemas))]


def role_graph(conn: Connection, roles: Sequence[str]) -> RoleGraph:
    """Which of ``roles`` exist, who is superuser, and every role membership edge."""
    existing, supers = _rows(conn, _ROLES_SQL, roles=list(roles))[0]
    member_of: dict[str, set[str]] = {}
    for member, group in _rows(conn, _MEMBERSHIP_SQL):
        member_of.setdefault(str(member), set()).add(str(group))
    return RoleGraph(frozenset(existing), frozenset(supers),
                     {m: frozenset(g) for m, g in member_of.items()})


def server_facts(conn: Connection) -> ServerFacts:
    port, path, source, user, poolers, database = _rows(conn, _SERVER_SQL)[0]
    return ServerFacts(int(port), str(path), str(source), str(user),
                       tuple(poolers), str(database))


def probe_routing(conn: Connection, tables: Sequence[str], canary_id: str,
                  now: object) -> RoutingProbe:
    """On a tenant connection inside an open transaction: where unqualified names resolve,
    and where a canary basket lands. The caller rolls the transaction back."""
    current, path, resolved = _rows(conn, _ROUTE_SQL, tables=list(tables))[0]
    # Plain text, not a Core insert: every probe runs on a fresh engine, whose statement
    # cache is empty, and compiling the insert once per tenant was a good part of the cost.
    conn.exec_driver_sql(_CANARY_INSERT_SQL, {
        "id": canary_id, "name": f"docex-ops-canary-{canary_id}",
        "description": "docex-ops isolation canary", "now": now})
    landed, wrote, copiers = _rows(conn, _CANARY_SQL, id=canary_id)[0]
    pairs = dict(str(item).split("=", 1) for item in resolved)
    return RoutingProbe(None if current is None else str(current), tuple(path),
                        {t: (s or None) for t, s in pairs.items()},
                        None if landed is None else str(landed), tuple(wrote),
                        tuple(map(str, copiers)))


def backend_snapshot(backend: PostgresBackend) -> AbstractContextManager[Connection]:
    """``catalog_snapshot`` of the server ``backend`` speaks to (the kind registry's entry)."""
    return catalog_snapshot(backend.admin_engine)


@contextmanager
def catalog_snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only, repeatable-read transaction: every catalog check sees the same state.

    ``search_path = pg_catalog`` makes ``pg_describe_object`` qualify every name,
    ``public`` included.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin() as transaction:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql("SET LOCAL search_path = pg_catalog")
            yield conn
            transaction.rollback()
