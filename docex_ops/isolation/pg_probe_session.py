"""PostgreSQL live probe: act as a tenant's role and try to reach what it must not.

On one connection, inside one transaction that is always rolled back: ``SET
LOCAL ROLE`` to the tenant role, then each attempt under its own savepoint.
Every attempt touches no row (``WHERE false``, ``INSERT ... SELECT ... WHERE
false``): PostgreSQL checks the privileges of a statement before it runs it,
so a zero-row statement proves the right without reading or writing anything,
and fires no row trigger. ``42501 insufficient_privilege`` is a denial; any
other error (a lock held past the lock timeout) leaves the attempt unproven.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backends.scratch import new_schema_name
from docex_ops.isolation.pg_facts_code import rows

DENIED = "denied"
ALLOWED = "allowed"
INSUFFICIENT_PRIVILEGE = "42501"
READS = ("SELECT",)
WRITES = ("INSERT", "UPDATE", "DELETE")


class ProbeError(RuntimeError):
    """The probe could not act as the role (SET ROLE refused, connection lost)."""


@dataclass(frozen=True)
class Target:
    schema: str
    name: str
    kind: str     # relkind letter
    column: str   # first column, for the zero-row INSERT and UPDATE ("" when none)

    @property
    def actions(self) -> tuple[str, ...]:
        if self.kind not in ("r", "p"):
            return READS
        return READS + (WRITES if self.column else ("DELETE",))


@dataclass(frozen=True)
class Attempt:
    schema: str
    name: str     # "" for CREATE in the schema
    action: str
    outcome: str  # DENIED, ALLOWED, or the error that left it unproven


_TARGETS_SQL = """
SELECT n.nspname, c.relname, c.relkind::text,
       coalesce((SELECT a.attname FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum LIMIT 1), '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   -- An extension's own tables (PostGIS' spatial_ref_sys) are readable by design.
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1, 2
"""

# Which grants give ``role`` the privileges it was seen to use on a relation (column
# grants included: SELECT with no column needs a right on any one) or a schema.
_CAUSES_SQL = """
WITH obj AS (
  SELECT c.relacl AS acl, c.relowner AS owner, c.oid AS rel, 'r'::"char" AS kind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = %(schema)s AND c.relname = %(name)s
  UNION ALL
  SELECT n.nspacl, n.nspowner, NULL, 'n' FROM pg_namespace n
   WHERE n.nspname = %(schema)s AND %(name)s = ''
)
SELECT coalesce(g.rolname, 'PUBLIC'), a.privilege_type, ''
  FROM obj CROSS JOIN LATERAL aclexplode(coalesce(obj.acl, acldefault(obj.kind, obj.owner))) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE a.privilege_type = ANY(%(privileges)s) AND a.grantee <> obj.owner
   AND (a.grantee = 0 OR pg_has_role(%(role)s, a.grantee, 'USAGE'))
UNION ALL
SELECT coalesce(g.rolname, 'PUBLIC'), a.privilege_type, t.attname
  FROM obj JOIN pg_attribute t ON t.attrelid = obj.rel AND t.attnum > 0
  CROSS JOIN LATERAL aclexplode(t.attacl) a
  LEFT JOIN pg_roles g ON g.oid = a.grantee
 WHERE a.privilege_type = ANY(%(privileges)s)
   AND (a.grantee = 0 OR pg_has_role(%(role)s, a.grantee, 'USAGE'))
UNION ALL
SELECT pg_get_userbyid(obj.owner), 'OWNER', '' FROM obj
 WHERE pg_has_role(%(role)s, obj.owner, 'USAGE')
"""


def targets(conn: Connection, schemas: Sequence[str]) -> dict[str, list[Target]]:
    """The relations of ``schemas`` an actor tries, by schema."""
    found: dict[str, list[Target]] = {s: [] for s in schemas}
    for s, n, k, c in rows(conn, _TARGETS_SQL, schemas=list(schemas)):
        found[str(s)].append(Target(str(s), str(n), str(k), str(c)))
    return found


def causes(conn: Connection, role: str, schema: str, name: str,
           privileges: Sequence[str]) -> list[tuple[str, str, str]]:
    """(grantee, privilege, column) of every grant that lets ``role`` do ``privileges`` on
    ``schema.name`` (``name`` "": the schema), and (owner, "OWNER", "") if it owns it
    through a membership."""
    return [(str(g), str(p), str(c)) for g, p, c in rows(
        conn, _CAUSES_SQL, schema=schema, name=name, privileges=list(privileges), role=role)]


def statement(target: Target, action: str) -> str:
    """The zero-row statement that needs exactly ``action`` on ``target``."""
    table = f"{quote_ident(target.schema)}.{quote_ident(target.name)}"
    column = quote_ident(target.column) if target.column else ""
    return {"SELECT": f"SELECT 1 FROM {table} WHERE false",
            "INSERT": f"INSERT INTO {table} ({column}) SELECT NULL WHERE false",
            "UPDATE": f"UPDATE {table} SET {column} = NULL WHERE false",
            "DELETE": f"DELETE FROM {table} WHERE false"}[action]


def act_as(engine: Engine, role: str, tries: Sequence[Target], create_in: Sequence[str],
           lock_timeout: float) -> list[Attempt]:
    """Every action of every target, then CREATE in each of ``create_in``, as ``role``,
    in one transaction that is rolled back. SET ROLE failing raises ProbeError."""
    attempts = []
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            cursor = _cursor(conn)
            timeout = max(1, int(lock_timeout * 1000))
            cursor.execute(f"SET LOCAL lock_timeout = {timeout}; "
                           f"SET LOCAL statement_timeout = {timeout * 4}; "
                           "SET LOCAL search_path = pg_catalog")
            try:
                cursor.execute(f"SET LOCAL ROLE {quote_ident(role)}")
            except Exception as exc:
                if getattr(exc, "pgcode", None) is None:
                    raise
                raise ProbeError(str(exc).strip().splitlines()[0]) from exc
            for target in tries:
                for action in target.actions:
                    outcome = _attempt(cursor, statement(target, action))
                    attempts.append(Attempt(target.schema, target.name, action, outcome))
            for schema in create_in:
                scratch = quote_ident(new_schema_name("probe"))
                sql = f"CREATE TABLE {quote_ident(schema)}.{scratch} ()"
                attempts.append(Attempt(schema, "", "CREATE", _attempt(cursor, sql)))
        finally:
            transaction.rollback()  # nothing an attempt did outlives the probe
    return attempts


def _cursor(conn: Connection) -> Any:
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    return dbapi.cursor()


def _attempt(cursor: Any, sql: str) -> str:
    try:
        cursor.execute("SAVEPOINT docex_probe; " + sql)
    except Exception as exc:  # the driver's error, with the server's SQLSTATE
        code = getattr(exc, "pgcode", None)
        if code is None:
            raise  # not the server answering: the connection itself failed
        cursor.execute("ROLLBACK TO SAVEPOINT docex_probe; RELEASE SAVEPOINT docex_probe")
        if code == INSUFFICIENT_PRIVILEGE:
            return DENIED
        return f"{code}: {str(exc).strip().splitlines()[0]}"
    cursor.execute("RELEASE SAVEPOINT docex_probe")
    return ALLOWED
