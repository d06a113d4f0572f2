"""PostgreSQL catalog facts about who can reach the tenants: rights, roles, default
privileges, and who can create objects in the schemas on a search path.

One set-based query per fact, the schemas as one array parameter. Nothing here
judges; ``docex_ops.isolation`` decides what is a violation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from docex_ops.isolation.pg_facts_code import rows

PUBLIC = "PUBLIC"
OWNER = "OWNER"  # the privilege column of an ownership row


@dataclass(frozen=True)
class Holder:
    """A right on an object of a tenant schema: an explicit grant, or ownership."""

    schema: str
    kind: str                # schema, table, view, materialized view, foreign table,
                             # sequence, column, function, procedure, aggregate, type
    names: tuple[str, ...]   # unquoted: (schema,), (schema, name) or (schema, table, column)
    args: str                # identity arguments of a routine, else ""
    grantee: str             # role name, PUBLIC, or the owner on an OWNER row
    privilege: str           # SELECT, USAGE, ..., or OWNER


@dataclass(frozen=True)
class Role:
    name: str
    superuser: bool
    login: bool
    bypassrls: bool
    createrole: bool = False


@dataclass(frozen=True)
class DefaultAcl:
    role: str        # whose new objects get the grant (FOR ROLE)
    schema: str      # IN SCHEMA, "" for the role's global default
    objtype: str     # r (tables), S (sequences), f (routines), T (types), n (schemas)
    grantee: str     # role name or PUBLIC
    privilege: str


@dataclass(frozen=True)
class PathSetting:
    role: str        # ALTER ROLE ... SET search_path; "" for the database or server
    source: str      # where it is set, for messages
    value: str


@dataclass(frozen=True)
class CreateRight:
    schema: str
    owner: str       # pg_database_owner already resolved to the database's owner
    holder: str      # a role holding CREATE (the owner included), or PUBLIC


RELATION_KIND = ("CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' "
                  "WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' "
                  "ELSE 'table' END")
_ROUTINE_KIND = ("CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' "
                 "ELSE 'function' END")

_HOLDERS_SQL = f"""
WITH subject AS (SELECT oid, nspname, nspowner, nspacl FROM pg_namespace
                  WHERE nspname = ANY(%(schemas)s))
SELECT s.nspname, 'schema', ARRAY[s.nspname], '', coalesce(g.rolname, 'PUBLIC'),
       a.privilege_type
  FROM subject s CROSS JOIN LATERAL aclexplode(s.nspacl) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE a.grantee <> s.nspowner
UNION ALL
SELECT s.nspname, {RELATION_KIND}, ARRAY[s.nspname, c.relname], '',
       coalesce(g.rolname, 'PUBLIC'), a.privilege_type
  FROM pg_class c JOIN subject s ON s.oid = c.relnamespace
  CROSS JOIN LATERAL aclexplode(c.relacl) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND a.grantee <> c.relowner
UNION ALL
SELECT s.nspname, 'column', ARRAY[s.nspname, c.relname, t.attname], '',
       coalesce(g.rolname, 'PUBLIC'), a.privilege_type
  FROM pg_class c JOIN subject s ON s.oid = c.relnamespace
  JOIN pg_attribute t ON t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped
  CROSS JOIN LATERAL aclexplode(t.attacl) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND t.attacl IS NOT NULL
UNION ALL
SELECT s.nspname, {_ROUTINE_KIND}, ARRAY[s.nspname, p.proname],
       pg_get_function_identity_arguments(p.oid), coalesce(g.rolname, 'PUBLIC'),
       a.privilege_type
  FROM pg_proc p JOIN subject s ON s.oid = p.pronamespace
  CROSS JOIN LATERAL aclexplode(p.proacl) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE a.grantee <> p.proowner
UNION ALL
SELECT s.nspname, 'type', ARRAY[s.nspname, t.typname], '', coalesce(g.rolname, 'PUBLIC'),
       a.privilege_type
  FROM pg_type t JOIN subject s ON s.oid = t.typnamespace
  CROSS JOIN LATERAL aclexplode(t.typacl) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE t.typtype IN ('e', 'd', 'r', 'm') AND a.grantee <> t.typowner
UNION ALL
SELECT s.nspname, 'schema', ARRAY[s.nspname], '', pg_get_userbyid(s.nspowner), 'OWNER'
  FROM subject s
UNION ALL
SELECT s.nspname, {RELATION_KIND}, ARRAY[s.nspname, c.relname], '',
       pg_get_userbyid(c.relowner), 'OWNER'
  FROM pg_class c JOIN subject s ON s.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION ALL
SELECT s.nspname, {_ROUTINE_KIND}, ARRAY[s.nspname, p.proname],
       pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner), 'OWNER'
  FROM pg_proc p JOIN subject s ON s.oid = p.pronamespace
UNION ALL
SELECT s.nspname, 'type', ARRAY[s.nspname, t.typname], '', pg_get_userbyid(t.typowner), 'OWNER'
  FROM pg_type t JOIN subject s ON s.oid = t.typnamespace
 WHERE t.typtype IN ('e', 'd', 'r', 'm')
"""

_ROLES_SQL = ("SELECT rolname, rolsuper, rolcanlogin, rolbypassrls, rolcreaterole FROM pg_roles "
              "ORDER BY 1")

# Entries IN a tenant schema, and the global entries (no IN SCHEMA) of the roles that
# create objects in tenants: the tenant roles and the operators. A global entry holds
# the role's whole default, its own rights included: those are left out.
_DEFAULT_ACL_SQL = """
SELECT r.rolname, coalesce(n.nspname, ''), d.defaclobjtype::text,
       coalesce(g.rolname, 'PUBLIC'), a.privilege_type
  FROM pg_default_acl d
  JOIN pg_roles r ON r.oid = d.defaclrole
  LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
  CROSS JOIN LATERAL aclexplode(d.defaclacl) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE (n.nspname = ANY(%(schemas)s) OR (d.defaclnamespace = 0 AND r.rolname = ANY(%(roles)s)))
   AND a.grantee <> d.defaclrole
 ORDER BY 1, 2, 3, 4, 5
"""

# Every search_path a connection to this database can start with: per role and
# database, per role, per database, and the server's.
_PATH_SETTINGS_SQL = """
SELECT coalesce(r.rolname, ''),
       CASE WHEN s.setdatabase <> 0 AND s.setrole <> 0 THEN 'ALTER ROLE ... IN DATABASE'
            WHEN s.setrole <> 0 THEN 'ALTER ROLE' ELSE 'ALTER DATABASE' END,
       substr(c, length('search_path=') + 1)
  FROM pg_db_role_setting s
  CROSS JOIN LATERAL unnest(s.setconfig) c
  LEFT JOIN pg_roles r ON r.oid = s.setrole
 WHERE c LIKE 'search_path=%%'
   AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
UNION ALL
SELECT '', 'server configuration', boot_val FROM pg_settings WHERE name = 'search_path'
UNION ALL
SELECT '', 'server configuration', reset_val FROM pg_settings WHERE name = 'search_path'
"""

# CREATE on the named schemas (an unset ACL is the owner's default); the built-in
# pg_database_owner stands for whoever owns this database.
_CREATE_RIGHTS_SQL = """
WITH dbo AS (SELECT pg_get_userbyid(datdba) AS name FROM pg_database
              WHERE datname = current_database())
SELECT n.nspname,
       CASE WHEN o.rolname = 'pg_database_owner' THEN (SELECT name FROM dbo) ELSE o.rolname END,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC'
            WHEN g.rolname = 'pg_database_owner' THEN (SELECT name FROM dbo)
            ELSE g.rolname END
  FROM pg_namespace n
  JOIN pg_roles o ON o.oid = n.nspowner
  CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE n.nspname = ANY(%(schemas)s) AND a.privilege_type = 'CREATE'
 ORDER BY 1, 3
"""


def holders(conn: Connection, schemas: Sequence[str]) -> list[Holder]:
    """Every explicit right (schema, relation, column, routine, type) on ``schemas`` and
    every owner; an owner's own grants are left out. In a fixed order (the schema's own
    rights first, then by name): findings name their first rights, the same ones each run."""
    found = [Holder(str(s), str(k), tuple(map(str, n)), str(a), str(g), str(p))
             for s, k, n, a, g, p in rows(conn, _HOLDERS_SQL, schemas=list(schemas))]
    return sorted(found, key=lambda h: (h.schema, h.kind != "schema", h.names, h.args,
                                        h.grantee, h.privilege))


def roles(conn: Connection) -> list[Role]:
    return [Role(str(n), bool(s), bool(lg), bool(b), bool(c))
            for n, s, lg, b, c in rows(conn, _ROLES_SQL)]


def default_acls(conn: Connection, schemas: Sequence[str],
                 creators: Sequence[str]) -> list[DefaultAcl]:
    return [DefaultAcl(str(r), str(s), str(o), str(g), str(p))
            for r, s, o, g, p in rows(conn, _DEFAULT_ACL_SQL, schemas=list(schemas),
                                      roles=list(creators))]


def path_settings(conn: Connection) -> list[PathSetting]:
    return [PathSetting(str(r), str(s), str(v or ""))
            for r, s, v in rows(conn, _PATH_SETTINGS_SQL)]


def create_rights(conn: Connection, schemas: Sequence[str]) -> list[CreateRight]:
    return [CreateRight(str(s), str(o), str(h))
            for s, o, h in rows(conn, _CREATE_RIGHTS_SQL, schemas=list(schemas))]
