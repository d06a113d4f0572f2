"""PostgreSQL catalog facts about code and references across the tenant boundary.

Set-based like ``postgres_audit``: the schemas are one array parameter, so each
fact is one round trip whatever the number of tenants. Which edges cross the
boundary is a choice of two SQL fragments (where the edges start, where they
end), so the references out of a tenant and the references into it share one
query text. Objects come back with ``pg_identify_object_as_address`` (names
unquoted, argument types already SQL), from which a remedy can be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

# Schemas PostgreSQL itself owns: a dependency on them is never a tenant leak.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


@dataclass(frozen=True)
class ObjectAddress:
    """An object as ``pg_identify_object_as_address`` names it."""

    type: str                  # "view", "function", "trigger", "table constraint", ...
    names: tuple[str, ...]     # unquoted: schema, name[, member]
    args: tuple[str, ...] = ()  # function argument types, already valid SQL


@dataclass(frozen=True)
class Dependency:
    """An object in ``schema`` that depends on an object in ``ref_schema``."""

    schema: str
    ref_schema: str
    dependent: str       # pg_describe_object of the dependent object
    referenced: str      # pg_describe_object of the referenced object
    ref_is_relation: bool
    # The dependent as something to drop: a view's _RETURN rule is the view itself.
    address: ObjectAddress | None = None


@dataclass(frozen=True)
class Definition:
    """The text of an object outside the tenants that may name a tenant schema."""

    schema: str
    description: str
    address: ObjectAddress
    text: str
    definer: str = ""  # a SECURITY DEFINER routine: the owner whose rights it runs with
    executors: tuple[str, ...] = ()  # who may EXECUTE it (PUBLIC included), for a definer


@dataclass(frozen=True)
class Publication:
    name: str
    schema: str   # "" for FOR ALL TABLES
    table: str    # "" for a whole schema (FOR TABLES IN SCHEMA) or FOR ALL TABLES


@dataclass(frozen=True)
class CodeObject:
    """Code in a tenant schema: a routine, trigger, rule, event trigger, or an expression
    (default, check, index, policy) calling a routine outside the tenant."""

    schema: str
    description: str
    address: ObjectAddress
    callee_schema: str   # the routine it runs ("" when it is a routine itself)
    callee: str


def rows(conn: Connection, sql: str, **params: object) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.exec_driver_sql(sql, params)]


def address(kind: Any, names: Any, args: Any) -> ObjectAddress:
    return ObjectAddress(str(kind), tuple(map(str, names or ())), tuple(map(str, args or ())))


# Where edges start: the subject tenant schemas, or every schema that is no tenant's
# (and not PostgreSQL's own: pg_toast and temp schemas vanish or hold no definitions).
SUBJECT_SCHEMAS = "SELECT oid FROM pg_namespace WHERE nspname = ANY(%(schemas)s)"
OUTSIDE_SCHEMAS = """SELECT oid FROM pg_namespace
   WHERE oid NOT IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(%(schemas)s))
     AND nspname <> ALL(%(system)s) AND nspname NOT LIKE 'pg\\_toast%%'
     AND nspname NOT LIKE 'pg\\_temp%%'"""
# Where they end: anywhere but their own or a system schema, or inside a tenant.
LEAVING_THE_SCHEMA = """e.refnsp <> e.nsp
   AND rn.nspname <> ALL(%(system)s) AND rn.nspname NOT LIKE 'pg\\_toast%%'
   AND rn.nspname NOT LIKE 'pg\\_temp%%'"""
INTO_A_TENANT = "rn.nspname = ANY(%(schemas)s)"

# Each kind of object that can hold a reference (view rules, defaults,
# triggers, policies, constraints, relations, functions, types, operators)
# mapped to the schema it lives in, then joined to pg_depend; the referenced
# side's schema is looked up by catalog. Only the crossing edges are described
# (the describing functions are the slow part, so they run on the few survivors).
_EDGES_SQL = """
WITH source AS ({source}),
owned AS (
  SELECT 'pg_class'::regclass AS classid, c.oid AS objid, c.relnamespace AS nsp
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, c.relnamespace
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
   WHERE c.relnamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_attrdef'::regclass, a.oid, c.relnamespace
    FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
   WHERE c.relnamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid, c.relnamespace
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_policy'::regclass, p.oid, c.relnamespace
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
   WHERE c.relnamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_constraint'::regclass, k.oid, k.connamespace
    FROM pg_constraint k WHERE k.connamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_proc'::regclass, p.oid, p.pronamespace
    FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typnamespace
    FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM source)
  UNION ALL SELECT 'pg_operator'::regclass, o.oid, o.oprnamespace
    FROM pg_operator o WHERE o.oprnamespace IN (SELECT oid FROM source)
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
       e.refclassid = 'pg_class'::regclass,
       a.type, a.object_names, a.object_args
  FROM edge e
  JOIN pg_namespace n ON n.oid = e.nsp
  JOIN pg_namespace rn ON rn.oid = e.refnsp
  LEFT JOIN pg_rewrite v
    ON e.classid = 'pg_rewrite'::regclass AND v.oid = e.objid AND v.rulename = '_RETURN'
  CROSS JOIN LATERAL pg_identify_object_as_address(
       CASE WHEN v.oid IS NULL THEN e.classid ELSE 'pg_class'::regclass END,
       coalesce(v.ev_class, e.objid),
       CASE WHEN e.classid = 'pg_class'::regclass THEN e.objsubid ELSE 0 END) a
 WHERE {target}
 ORDER BY 1, 3, 4
"""


def dependency_edges(conn: Connection, source: str, target: str,
                     **params: object) -> list[Dependency]:
    """The pg_depend edges from objects in the ``source`` schemas that ``target`` keeps."""
    sql = _EDGES_SQL.replace("{source}", source).replace("{target}", target)
    return [Dependency(str(s), str(r), str(d), str(o), bool(rel), address(k, n, a))
            for s, r, d, o, rel, k, n, a in rows(conn, sql, **params)]


def references_into(conn: Connection, tenant_schemas: Sequence[str]) -> list[Dependency]:
    """Every pg_depend edge from an object outside the tenants to an object inside one."""
    return dependency_edges(conn, OUTSIDE_SCHEMAS, INTO_A_TENANT, schemas=list(tenant_schemas),
                            system=list(SYSTEM_SCHEMAS))


# The text of everything outside the tenants that can name a schema where pg_depend
# does not look: routine bodies and SET clauses, view queries (a dblink string),
# rules, triggers (their arguments), policies, defaults, foreign table options.
_OUTSIDE_TEXT_SQL = """
WITH outside AS ({outside})
SELECT n.nspname, pg_describe_object(x.classid, x.objid, 0),
       a.type, a.object_names, a.object_args, x.body, x.definer,
       CASE WHEN x.definer = '' THEN '{}'::text[] ELSE ARRAY(
         SELECT DISTINCT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee) END
           FROM pg_proc p CROSS JOIN LATERAL
                aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) e
          WHERE p.oid = x.objid AND e.privilege_type = 'EXECUTE') END
  FROM (
  SELECT 'pg_proc'::regclass AS classid, p.oid AS objid, p.pronamespace AS nsp,
         coalesce(p.prosrc, '') || ' ' || coalesce(array_to_string(p.proconfig, ' '), '') AS body,
         CASE WHEN p.prosecdef THEN pg_get_userbyid(p.proowner) ELSE '' END AS definer
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
   WHERE p.pronamespace IN (SELECT oid FROM outside) AND l.lanname NOT IN ('c', 'internal')
  UNION ALL SELECT 'pg_class'::regclass, c.oid, c.relnamespace, pg_get_viewdef(c.oid), ''
    FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM outside) AND c.relkind IN ('v', 'm')
  UNION ALL SELECT 'pg_class'::regclass, c.oid, c.relnamespace,
         coalesce(array_to_string(f.ftoptions, ' '), ''), ''
    FROM pg_foreign_table f JOIN pg_class c ON c.oid = f.ftrelid
   WHERE c.relnamespace IN (SELECT oid FROM outside)
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, c.relnamespace, pg_get_ruledef(r.oid), ''
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
   WHERE c.relnamespace IN (SELECT oid FROM outside) AND r.rulename <> '_RETURN'
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid, c.relnamespace, pg_get_triggerdef(t.oid), ''
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace IN (SELECT oid FROM outside) AND NOT t.tgisinternal
  UNION ALL SELECT 'pg_policy'::regclass, p.oid, c.relnamespace,
         coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' '
         || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''), ''
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
   WHERE c.relnamespace IN (SELECT oid FROM outside)
  UNION ALL SELECT 'pg_attrdef'::regclass, d.oid, c.relnamespace,
         pg_get_expr(d.adbin, d.adrelid), ''
    FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
   WHERE c.relnamespace IN (SELECT oid FROM outside)
  ) x
  JOIN pg_namespace n ON n.oid = x.nsp
  CROSS JOIN LATERAL pg_identify_object_as_address(x.classid, x.objid, 0) a
 ORDER BY 1, 2
""".replace("{outside}", OUTSIDE_SCHEMAS)


def outside_definitions(conn: Connection, tenant_schemas: Sequence[str]) -> list[Definition]:
    return [Definition(str(s), str(d), address(k, n, a), str(body or ""), str(definer),
                       tuple(map(str, executors)))
            for s, d, k, n, a, body, definer, executors in rows(conn, _OUTSIDE_TEXT_SQL,
                                            schemas=list(tenant_schemas),
                                            system=list(SYSTEM_SCHEMAS))]


_PUBLICATIONS_SQL = """
SELECT p.pubname, n.nspname, ''
  FROM pg_publication_namespace pn
  JOIN pg_publication p ON p.oid = pn.pnpubid
  JOIN pg_namespace n ON n.oid = pn.pnnspid
 WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT p.pubname, n.nspname, c.relname
  FROM pg_publication_rel pr
  JOIN pg_publication p ON p.oid = pr.prpubid
  JOIN pg_class c ON c.oid = pr.prrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s)
UNION ALL
SELECT pubname, '', '' FROM pg_publication WHERE puballtables
 ORDER BY 1, 2, 3
"""
_PUBLICATIONS_SQL_14 = _PUBLICATIONS_SQL.split("UNION ALL", 1)[1]  # before FOR TABLES IN SCHEMA


def publications(conn: Connection, tenant_schemas: Sequence[str],
                 server_version: int) -> list[Publication]:
    """Publications that stream tenant rows to whoever subscribes."""
    sql = _PUBLICATIONS_SQL if server_version >= 150000 else _PUBLICATIONS_SQL_14
    return [Publication(str(p), str(s), str(t))
            for p, s, t in rows(conn, sql, schemas=list(tenant_schemas))]


# DocEX's schema has no routines, triggers or rules: every one in a tenant is listed,
# with the routine a trigger or event trigger runs; and every expression of a tenant
# (default, check, index, policy) that calls a routine outside both it and the system.
_CODE_SQL = """
WITH subject AS (SELECT oid FROM pg_namespace WHERE nspname = ANY(%(schemas)s)),
code AS (
  SELECT 'pg_proc'::regclass AS classid, p.oid AS objid, p.pronamespace AS nsp,
         NULL::oid AS callee
    FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT 'pg_trigger'::regclass, t.oid, c.relnamespace, t.tgfoid
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace IN (SELECT oid FROM subject) AND NOT t.tgisinternal
  UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, c.relnamespace, NULL
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
   WHERE c.relnamespace IN (SELECT oid FROM subject) AND r.rulename <> '_RETURN'
  UNION ALL SELECT 'pg_event_trigger'::regclass, e.oid, p.pronamespace, e.evtfoid
    FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
   WHERE p.pronamespace IN (SELECT oid FROM subject)
  UNION ALL SELECT d.classid, d.objid, x.nsp, d.refobjid
    FROM (SELECT 'pg_attrdef'::regclass AS classid, a.oid AS objid, c.relnamespace AS nsp
            FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
           WHERE c.relnamespace IN (SELECT oid FROM subject)
          UNION ALL SELECT 'pg_constraint'::regclass, k.oid, k.connamespace
            FROM pg_constraint k WHERE k.connamespace IN (SELECT oid FROM subject)
          UNION ALL SELECT 'pg_class'::regclass, c.oid, c.relnamespace
            FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM subject)
          UNION ALL SELECT 'pg_policy'::regclass, p.oid, c.relnamespace
            FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
           WHERE c.relnamespace IN (SELECT oid FROM subject)) x
    JOIN pg_depend d ON d.classid = x.classid AND d.objid = x.objid
    JOIN pg_proc f ON f.oid = d.refobjid AND d.refclassid = 'pg_proc'::regclass
   WHERE f.pronamespace <> x.nsp
     AND f.pronamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname = ANY(%(system)s))
)
SELECT DISTINCT n.nspname, pg_describe_object(c.classid, c.objid, 0),
       a.type, a.object_names, a.object_args,
       coalesce(fn.nspname, ''),
       CASE WHEN c.callee IS NULL THEN ''
            ELSE pg_describe_object('pg_proc'::regclass, c.callee, 0) END
  FROM code c
  JOIN pg_namespace n ON n.oid = c.nsp
  LEFT JOIN pg_proc f ON f.oid = c.callee
  LEFT JOIN pg_namespace fn ON fn.oid = f.pronamespace
  CROSS JOIN LATERAL pg_identify_object_as_address(c.classid, c.objid, 0) a
 ORDER BY 1, 2
"""


def tenant_code(conn: Connection, schemas: Sequence[str]) -> list[CodeObject]:
    return [CodeObject(str(s), str(d), address(k, n, a), str(cs), str(c))
            for s, d, k, n, a, cs, c in rows(conn, _CODE_SQL, schemas=list(schemas),
                                             system=list(SYSTEM_SCHEMAS))]
