"""The tenant's own extra tables of an archive, restored by a role that can touch nothing
but the scratch schema.

Only with ``--allow-extra-objects``: an application's tables come back with
their definitions, so that SQL is the archive's. It is never run as the
operator. A temporary LOGIN role (``docex$restorer_<hex>``, held like a scratch
object so ``cleanup`` can tell a live one from a leftover) with a random
password, no attributes and only USAGE and CREATE on the scratch schema (not its
ownership, which would let it drop DocEX's tables there), connects as itself:
a script cannot ``RESET ROLE`` back to the operator, and a CHECK constraint or a
default that reaches for another tenant fails for want of rights. Afterwards
every object the role owns is checked: all in the scratch schema, only tables,
their indexes, constraints and owned sequences, nothing that depends on another
schema (functions and the like outside ``pg_catalog``), no triggers, rules,
policies or grants. Then ownership goes to the operator and the role is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from docex_ops.backends import scratch
from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backup.archive import ArchiveRefused
from docex_ops.backup.pg_load import RESTRICT_RE, CopyData, copy_block
from docex_ops.backup.pg_rewrite import SchemaRewriter
from docex_ops.config.settings import PostgresSettings
from docex_ops.isolation.pg_facts import cross_schema_dependencies, schema_objects

_COPY_START = b"COPY "
_COPY_END = b" FROM stdin;\n"

_OWNED_SQL = """
SELECT d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()),
       CASE WHEN d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            THEN pg_describe_object(d.classid, d.objid, d.objsubid) END,
       CASE WHEN d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            THEN (pg_identify_object(d.classid, d.objid, d.objsubid)).schema
                 = quote_ident(%(schema)s) END,
       (SELECT datname FROM pg_database WHERE oid = d.dbid)
  FROM pg_shdepend d
 WHERE d.refclassid = 'pg_authid'::regclass AND d.deptype = 'o'
   AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
"""

_ATTACHED_SQL = """
WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = %(s)s)
SELECT 'trigger ' || t.tgname || ' on ' || c.relname
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace IN (SELECT oid FROM s) AND NOT t.tgisinternal
UNION ALL
SELECT 'rule ' || r.rulename || ' on ' || c.relname
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
 WHERE c.relnamespace IN (SELECT oid FROM s)
UNION ALL
SELECT 'policy ' || p.polname || ' on ' || c.relname
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace IN (SELECT oid FROM s)
UNION ALL
SELECT 'row security on ' || c.relname FROM pg_class c
 WHERE c.relnamespace IN (SELECT oid FROM s) AND (c.relrowsecurity OR c.relforcerowsecurity)
UNION ALL
SELECT 'sequence ' || c.relname || ' owned by no column of its schema' FROM pg_class c
 WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relkind = 'S' AND NOT EXISTS (
       SELECT 1 FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
          AND t.relnamespace = c.relnamespace)
UNION ALL
SELECT 'grant on ' || c.relname || ' to ' || coalesce(r.rolname, 'PUBLIC')
  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relowner = %(role_oid)s
   AND a.grantee <> c.relowner
UNION ALL
SELECT 'grant on ' || c.relname || '.' || t.attname || ' to ' || coalesce(r.rolname, 'PUBLIC')
  FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid
  CROSS JOIN LATERAL aclexplode(t.attacl) a
  LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE c.relnamespace IN (SELECT oid FROM s) AND c.relowner = %(role_oid)s
   AND a.grantee <> c.relowner
"""


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 form of ``password`` (RFC 5802/7677), so the clear text never
    reaches the server's statement log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}$"
            f"{b64(hashlib.sha256(client_key).digest()).decode()}:{b64(server_key).decode()}")


@contextmanager
def restricted_role(engine: Engine, schema: str) -> Iterator[tuple[str, str]]:
    """A held, temporary LOGIN role with only USAGE and CREATE on ``schema`` (and
    REFERENCES on its tables, for foreign keys into DocEX's): (name, password).
    Dropped at the end of the block, with whatever it still owns."""
    with scratch.hold_new_schema(engine, "restorer") as role:
        password = secrets.token_urlsafe(32)
        r, s = quote_ident(role), quote_ident(schema)
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql(
                f"CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
                f"NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 1 PASSWORD %(p)s "
                f"VALID UNTIL %(until)s",
                {"p": scram_verifier(password),
                 "until": conn.exec_driver_sql(
                     "SELECT (now() + interval '1 day')::text").scalar()})
            conn.exec_driver_sql(f"GRANT {r} TO CURRENT_USER")  # to reassign what it owns
            conn.exec_driver_sql(f"GRANT USAGE, CREATE ON SCHEMA {s} TO {r}")
            conn.exec_driver_sql(f"GRANT REFERENCES ON ALL TABLES IN SCHEMA {s} TO {r}")
            conn.exec_driver_sql(f"ALTER ROLE {r} SET search_path TO {s}")
            conn.exec_driver_sql("COMMIT")
        try:
            yield role, password
        finally:
            drop_role(engine, role)


def drop_role(engine: Engine, role: str) -> None:
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(r)s",
                                {"r": role}).first() is None:
            return
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql(f"DROP OWNED BY {quote_ident(role)}")
        conn.exec_driver_sql(f"DROP ROLE {quote_ident(role)}")
        conn.exec_driver_sql("COMMIT")


def run_as_role(pg: PostgresSettings, role: str, password: str, stream: IO[bytes],
                old: str, new: str, what: str) -> None:
    """Run pg_restore's SQL for the extra tables as ``role``, renamed into ``new``.

    Not through psql (which obeys backslash commands): statements between the row
    blocks go to the server as they are, each block of rows through COPY. A
    connection of the role's own, in one transaction.
    """
    engine = create_engine(pg.url(application_name="docex-ops-restorer").set(
        username=role, password=password), poolclass=NullPool)
    driver_error = engine.dialect.loaded_dbapi.Error
    rewriter = SchemaRewriter(old, new)
    try:
        try:
            conn = engine.raw_connection()
        except DBAPIError as exc:
            raise RuntimeError(f"the restricted role {role} could not connect "
                               f"({_first_line(exc.orig)}); allow it in pg_hba.conf or "
                               "restore without --allow-extra-objects") from exc
        try:
            cursor = conn.cursor()
            statements: list[bytes] = []
            lines = iter(stream)
            for line in lines:
                if RESTRICT_RE.fullmatch(line) or line.startswith(b"--"):
                    continue
                line = rewriter.rename(line)
                if line.startswith(_COPY_START) and line.endswith(_COPY_END):
                    _execute(cursor, statements)
                    copy_block(cursor, line.decode(), CopyData(lines, what))
                else:
                    statements.append(line)
            _execute(cursor, statements)
            conn.commit()
        except driver_error as exc:
            raise RuntimeError(f"{what}: restoring the tenant's own tables as {role} "
                               f"failed: {_first_line(exc)}") from exc
        finally:
            conn.close()
    finally:
        engine.dispose()


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _execute(cursor: Any, statements: list[bytes]) -> None:
    if any(s.strip() for s in statements):
        cursor.execute(b"".join(statements))
    statements.clear()


def check_role_work(conn: Connection, role: str, schema: str, what: str) -> None:
    """Everything ``role`` made is one of the allowed kinds, inside ``schema``, relying on
    nothing outside it but PostgreSQL's own; ArchiveRefused names the first that is not."""
    for here, described, inside, database in conn.exec_driver_sql(
            _OWNED_SQL, {"role": role, "schema": schema}):
        if not here:
            raise ArchiveRefused(f"{what}: the restricted role made an object in database "
                                 f"{database!r}; refused (drop role {role} there by hand)")
        if not inside:
            raise ArchiveRefused(f"{what}: the archive's SQL made {described} outside the "
                                 "scratch schema; refused, and it was removed")
    for obj in schema_objects(conn, [schema]):
        if obj.kind not in ("r", "S"):
            label = {"v": "view", "m": "materialized view", "f": "foreign table",
                     "p": "partitioned table", "c": "composite type"}.get(obj.kind, obj.kind)
            raise ArchiveRefused(f"{what}: the archive's SQL made {label} {obj.name}, which "
                                 "DocEX's schema does not have; refused")
    for dep in cross_schema_dependencies(conn, [schema]):
        raise ArchiveRefused(f"{what}: {dep.dependent} depends on {dep.referenced} in schema "
                             f"{dep.ref_schema}; refused (extra tables may use only "
                             "PostgreSQL's built-in functions)")
    role_oid = conn.exec_driver_sql("SELECT oid FROM pg_roles WHERE rolname = %(r)s",
                                    {"r": role}).scalar()
    for (found,) in conn.exec_driver_sql(_ATTACHED_SQL, {"s": schema, "role_oid": role_oid}):
        raise ArchiveRefused(f"{what}: the archive's SQL made a {found}, which DocEX's "
                             "schema does not have; refused")


def hand_over(conn: Connection, role: str) -> None:
    """What the role made now belongs to the operator (inside the caller's transaction)."""
    conn.exec_driver_sql(f"REASSIGN OWNED BY {quote_ident(role)} TO CURRENT_USER")
