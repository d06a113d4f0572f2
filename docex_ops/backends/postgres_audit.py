"""PostgreSQL catalog facts for the isolation audit: one set-based query per fact.

Every function takes the schemas to inspect as one array parameter, so the
cost is one round trip whatever the number of tenants. Judging the facts
(PASS / WARN / FAIL) is the job of ``docex_ops.isolation``; nothing here
decides what is a violation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from docex_ops.schema import docbasket

# Schemas PostgreSQL itself owns: a dependency on them is never a tenant leak.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


@dataclass(frozen=True)
class SchemaObject:
    schema: str
    name: str
    kind: str  # relkind letter, "function" or "type"


@dataclass(frozen=True)
class Dependency:
    """An object in ``schema`` that depends on an object in ``ref_schema``."""

    schema: str
    ref_schema: str
    dependent: str       # pg_describe_object of the dependent object
    referenced: str      # pg_describe_object of the referenced object
    ref_is_relation: bool


@dataclass(frozen=True)
class FunctionSource:
    schema: str
    signature: str
    language: str
    body: str
    config: tuple[str, ...]  # proconfig entries, e.g. "search_path=tenant_b"


@dataclass(frozen=True)
class Grant:
    schema: str
    object: str   # "" for the schema itself, else the relation name
    grantee: str  # role name, or "PUBLIC"
    privilege: str


@dataclass(frozen=True)
class Ownership:
    schema: str
    object: str   # "" for the schema itself
    owner: str


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


@dataclass(frozen=True)
class ServerFacts:
    server_port: int
    configured_search_path: str
    search_path_source: str
    current_user: str
    pooler_clients: tuple[str, ...]         # application names that look like a pooler


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

# Each kind of object that can hold a reference (view rules, defaults,
# triggers, policies, constraints, relations, functions, types) mapped to the
# schema it lives in, then joined to pg_depend; the referenced side's schema
# is looked up by catalog. Only cross-schema edges are described (the
# describing functions are the slow part, so they run on the few survivors).
_DEPENDENCIES_SQL = """
WITH subject AS (SELECT oid FROM pg_namespace WHERE nspname = ANY(%(schemas)s)),
owned AS (
  SELECT 'pg_class'::regclass AS classid, c.oid AS objid, c.relnamespace AS nsp
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, c.relnamespace
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
   WHERE c.relnamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_attrdef'::regclass, a.oid, c.relnamespace
    FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
   WHERE c.relnamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid, c.relnamespace
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_policy'::regclass, p.oid, c.relnamespace
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
   WHERE c.relnamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_constraint'::regclass, k.oid, k.connamespace
    FROM pg_constraint k WHERE k.connamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_proc'::regclass, p.oid, p.pronamespace
    FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typnamespace
    FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM subject)
),
edge AS (
  SELECT o.nsp, d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid, d.refobjsubid,
         CASE d.refclassid
           WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.refobjid)
           WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.refobjid)
           WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.refobjid)
           WHEN 'pg_constraint'::regclass
             THEN (SELECT connamespace FROM pg_constraint WHERE oid = d.refobjid)
         END AS refnsp
    FROM owned o
    JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid
   WHERE d.refclassid <> 'pg_namespace'::regclass AND d.deptype NOT IN ('i', 'e', 'x')
)
SELECT DISTINCT n.nspname, rn.nspname,
       pg_describe_object(e.classid, e.objid, 0),
       pg_describe_object(e.refclassid, e.refobjid, 0),
       e.refclassid = 'pg_class'::regclass
  FROM edge e
  JOIN pg_namespace n ON n.oid = e.nsp
  JOIN pg_namespace rn ON rn.oid = e.refnsp
 WHERE e.refnsp <> e.nsp
   AND rn.nspname <> ALL(%(system)s) AND rn.nspname NOT LIKE 'pg\\_toast%%'
   AND rn.nspname NOT LIKE 'pg\\_temp%%'
 ORDER BY 1, 3, 4
"""

_FUNCTIONS_SQL = """
SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       l.lanname, coalesce(p.prosrc, ''), coalesce(p.proconfig, '{}')
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
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
SELECT n.nspname, '', coalesce(r.rolname, 'PUBLIC'), a.privilege_type
  FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND a.grantee <> n.nspowner
UNION ALL
SELECT n.nspname, c.relname, coalesce(r.rolname, 'PUBLIC'), a.privilege_type
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL aclexplode(c.relacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND a.grantee <> c.relowner
"""

_OWNERS_SQL = """
SELECT n.nspname, '', pg_get_userbyid(n.nspowner)
  FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner)
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
              ORDER BY 1)
"""

_ROUTE_SQL = """
SELECT current_schema(), current_schemas(false)::text[],
       ARRAY(SELECT t || '=' || coalesce(n.nspname, '')
               FROM unnest(%(tables)s::text[]) t
               LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(t))
               LEFT JOIN pg_namespace n ON n.oid = c.relnamespace)
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
              ORDER BY 1)
"""


def _rows(conn: Connection, sql: str, **params: object) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.exec_driver_sql(sql, params)]


def schema_objects(conn: Connection, schemas: Sequence[str]) -> list[SchemaObject]:
    """Relations (not indexes), functions and standalone types inside ``schemas``."""
    return [SchemaObject(str(s), str(n), str(k))
            for s, n, k in _rows(conn, _OBJECTS_SQL, schemas=list(schemas))]


def cross_schema_dependencies(conn: Connection, schemas: Sequence[str]) -> list[Dependency]:
    """Every pg_depend edge from an object in ``schemas`` to a non-system other schema."""
    return [Dependency(str(s), str(r), str(d), str(o), bool(rel))
            for s, r, d, o, rel in _rows(conn, _DEPENDENCIES_SQL, schemas=list(schemas),
                                         system=list(SYSTEM_SCHEMAS))]


def function_sources(conn: Connection, schemas: Sequence[str]) -> list[FunctionSource]:
    """Bodies and SET clauses of the non-C functions in ``schemas`` (pg_depend cannot see
    inside plpgsql or string-bodied SQL functions)."""
    return [FunctionSource(str(s), str(sig), str(lang), str(body), tuple(cfg))
            for s, sig, lang, body, cfg in _rows(conn, _FUNCTIONS_SQL, schemas=list(schemas))]


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
    return [Grant(str(s), str(o), str(g), str(p))
            for s, o, g, p in _rows(conn, _GRANTS_SQL, schemas=list(schemas))]


def owners(conn: Connection, schemas: Sequence[str]) -> list[Ownership]:
    return [Ownership(str(s), str(o), str(w))
            for s, o, w in _rows(conn, _OWNERS_SQL, schemas=list(schemas))]


def role_graph(conn: Connection, roles: Sequence[str]) -> RoleGraph:
    """Which of ``roles`` exist, who is superuser, and every role membership edge."""
    existing, supers = _rows(conn, _ROLES_SQL, roles=list(roles))[0]
    member_of: dict[str, set[str]] = {}
    for member, group in _rows(conn, _MEMBERSHIP_SQL):
        member_of.setdefault(str(member), set()).add(str(group))
    return RoleGraph(frozenset(existing), frozenset(supers),
                     {m: frozenset(g) for m, g in member_of.items()})


def server_facts(conn: Connection) -> ServerFacts:
    port, path, source, user, poolers = _rows(conn, _SERVER_SQL)[0]
    return ServerFacts(int(port), str(path), str(source), str(user),
                       tuple(poolers))


def probe_routing(conn: Connection, tables: Sequence[str], canary_id: str,
                  now: object) -> RoutingProbe:
    """On a tenant connection inside an open transaction: where unqualified names resolve,
    and where a canary basket lands. The caller rolls the transaction back."""
    current, path, resolved = _rows(conn, _ROUTE_SQL, tables=list(tables))[0]
    conn.execute(insert(docbasket).values(
        id=canary_id, name=f"docex-ops-canary-{canary_id}",
        description="docex-ops isolation canary", storage_config={}, status="canary",
        created_at=now, updated_at=now))
    landed, wrote = _rows(conn, _CANARY_SQL, id=canary_id)[0]
    pairs = dict(str(item).split("=", 1) for item in resolved)
    return RoutingProbe(None if current is None else str(current), tuple(path),
                        {t: (s or None) for t, s in pairs.items()},
                        None if landed is None else str(landed), tuple(wrote))


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
