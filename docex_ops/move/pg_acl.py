"""Owners and privileges of a moved tenant schema: read on the source, made on the target,
compared at the end.

A move copies the structure with ``--no-owner --no-privileges`` (roles are per
server, so a dump's ``ALTER ... OWNER`` and ``GRANT`` could name roles the
target lacks). This module carries them over instead, from the catalogs: the
owner of the schema and of each relation (``nspowner``, ``relowner``), their
privileges, column privileges included (``nspacl``, ``relacl``, ``attacl``,
exploded with ``aclexplode``; a NULL ACL read as its ``acldefault``, so
"never granted" and "granted the defaults" are the same), and the schema's
default privileges (``pg_default_acl``).

Role names map one to one, except that the source's connecting user stands
for the target's connecting user (a tenant without a role of its own is owned
by whoever docex-ops connects as, on each server). The tenant's own role
``docex_t_<id>`` is created on the target as ``tenants provision --with-role``
does; any other role the schema names must already exist there, else the
move is refused before anything is made (``require_roles``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError

from docex_ops.backends.postgres import PostgresBackend, quote_ident
from docex_ops.move.pg_online import MoveError
from docex_ops.tenants.roles import (
    RELATION_KIND_SQL,
    RELKINDS,
    ensure_role,
    first_line,
)

PUBLIC = "PUBLIC"
SCHEMA = "SCHEMA"
OWNER, GRANT, DEFAULT = "owner", "grant", "default"

_ROLE = "CASE WHEN {oid} = 0 THEN 'PUBLIC' ELSE pg_get_userbyid({oid}) END"
_EXPLODED = (f"{_ROLE.format(oid='a.grantor')}, {_ROLE.format(oid='a.grantee')}, "
             "a.privilege_type, a.is_grantable")

_ACL_SQL = f"""
WITH nsp AS (SELECT oid, nspowner, nspacl FROM pg_namespace WHERE nspname = %(s)s),
objects AS (
  SELECT 'SCHEMA' AS kind, '' AS name, n.nspowner AS owner,
         coalesce(n.nspacl, acldefault('n'::"char", n.nspowner)) AS acl
    FROM nsp n
  UNION ALL
  SELECT {RELATION_KIND_SQL}, c.relname, c.relowner,
         coalesce(c.relacl, acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char",
                                       c.relowner))
    FROM pg_class c JOIN nsp n ON n.oid = c.relnamespace
   WHERE c.relkind IN {RELKINDS}
)
SELECT '{OWNER}', o.kind, o.name, '', '', pg_get_userbyid(o.owner), '', false FROM objects o
UNION ALL
SELECT '{GRANT}', o.kind, o.name, '', {_EXPLODED}
  FROM objects o CROSS JOIN LATERAL aclexplode(o.acl) a
UNION ALL
SELECT '{GRANT}', 'COLUMN', c.relname, t.attname, {_EXPLODED}
  FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid JOIN nsp n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL aclexplode(t.attacl) a
 WHERE t.attnum > 0 AND NOT t.attisdropped AND t.attacl IS NOT NULL
UNION ALL
SELECT '{DEFAULT}', CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                    WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END,
       '', '', {_EXPLODED}
  FROM pg_default_acl d JOIN nsp n ON n.oid = d.defaclnamespace
  CROSS JOIN LATERAL aclexplode(d.defaclacl) a
"""


class MissingRolesError(MoveError):
    """The target server lacks roles the tenant's schema is owned by or grants to."""


@dataclass(frozen=True, order=True)
class AclEntry:
    """One fact: an owner (``role`` owns it), a privilege, or a default privilege (``grantor``
    is the FOR ROLE, ``kind`` the object type, e.g. TABLES)."""

    what: str       # owner | grant | default
    kind: str       # SCHEMA, TABLE, SEQUENCE, VIEW, ..., COLUMN; TABLES, ... for defaults
    name: str       # relation name; "" for the schema and for defaults
    column: str     # column privileges only
    grantor: str
    role: str       # the owner, or the grantee (or PUBLIC)
    privilege: str
    grantable: bool

    def roles(self) -> set[str]:
        return {r for r in (self.grantor, self.role) if r and r != PUBLIC}

    def renamed(self, names: dict[str, str]) -> AclEntry:
        return replace(self, grantor=names.get(self.grantor, self.grantor),
                       role=names.get(self.role, self.role))

    def describe(self) -> str:
        what = self.kind if not self.name else f"{self.kind} {self.name}"
        what += f"({self.column})" if self.column else ""
        if self.what == OWNER:
            return f"{what} owned by {self.role}"
        option = " WITH GRANT OPTION" if self.grantable else ""
        via = "default " if self.what == DEFAULT else ""
        return f"{via}{self.privilege} on {what} to {self.role} by {self.grantor}{option}"


@dataclass(frozen=True)
class SchemaAcl:
    """Everything about who owns and may use one schema, read as connecting user ``admin``."""

    schema: str
    admin: str
    entries: frozenset[AclEntry]

    def roles(self) -> set[str]:
        return set().union(*(e.roles() for e in self.entries))

    def as_seen_by(self, admin: str) -> frozenset[AclEntry]:
        """The entries with this side's connecting user replaced by ``admin``."""
        return frozenset(e.renamed({self.admin: admin}) for e in self.entries)


def read_acl(conn: Connection, schema: str) -> SchemaAcl:
    """The schema's owners and privileges, inside the caller's transaction."""
    admin = str(conn.exec_driver_sql("SELECT current_user").scalar_one())
    rows = conn.exec_driver_sql(_ACL_SQL, {"s": schema}).all()
    return SchemaAcl(schema, admin, frozenset(
        AclEntry(str(what), str(kind), str(name), str(column), str(grantor), str(role),
                 str(privilege), bool(grantable))
        for what, kind, name, column, grantor, role, privilege, grantable in rows))


def read_live(backend: PostgresBackend, schema: str) -> SchemaAcl:
    with backend.admin_engine.connect() as conn, conn.begin():
        return read_acl(conn, schema)


def _missing_roles(conn: Connection, acl: SchemaAcl, own_role: str) -> tuple[str, list[str]]:
    """(the target's connecting user, the roles the schema names that it lacks)."""
    admin = str(conn.exec_driver_sql("SELECT current_user").scalar_one())
    wanted = sorted({admin if r == acl.admin else r for r in acl.roles()} - {own_role})
    found = set(conn.exec_driver_sql("SELECT rolname FROM pg_roles WHERE rolname = ANY(%(r)s)",
                                     {"r": wanted}).scalars())
    return admin, [r for r in wanted if r not in found]


def require_roles(target: PostgresBackend, server: str, acl: SchemaAcl, own_role: str) -> None:
    """Refuse (MissingRolesError) when ``server`` lacks a role the schema needs; the tenant's
    own role is exempt: the move creates it."""
    with target.admin_engine.connect() as conn, conn.begin():
        _, missing = _missing_roles(conn, acl, own_role)
    if missing:
        raise MissingRolesError(_missing_message(acl.schema, server, missing,
                                                 "nothing was changed on the target"))


def _missing_message(schema: str, server: str, missing: list[str], outcome: str) -> str:
    return (f"server {server!r} has no role {', '.join(missing)}, which schema {schema!r} is "
            "owned by or grants privileges to; roles are per server and a move never drops "
            f"a grant: create the role(s) on {server!r} (or revoke those grants on the "
            f"source), then rerun the move; {outcome}")


def apply_acl(target: PostgresBackend, server: str, acl: SchemaAcl, own_role: str) -> None:
    """Give the target's copy of the schema the source's owners and privileges, in one
    transaction (the tenant's own role created first if missing)."""
    try:
        with target.admin_engine.connect() as conn, conn.begin():
            admin, missing = _missing_roles(conn, acl, own_role)
            if missing:  # a role was dropped on the target since the move was checked
                raise MissingRolesError(_missing_message(acl.schema, server, missing,
                                                         "the copy there is dropped"))
            if own_role in acl.roles():
                ensure_role(conn, own_role)
            wanted = acl.as_seen_by(admin)
            owners = {e.name: e.role for e in wanted if e.what == OWNER}
            for entry in sorted(e for e in wanted if e.what == OWNER):
                conn.exec_driver_sql(_owner_sql(acl.schema, entry))
            have = read_acl(conn, acl.schema).entries
            _apply_grants(conn, acl.schema, admin, have - wanted, owners, revoke=True)
            _apply_grants(conn, acl.schema, admin, wanted - have, owners, revoke=False)
    except ProgrammingError as exc:
        raise RuntimeError(f"giving schema {acl.schema!r} on server {server!r} the source's "
                           f"owners and privileges failed: {first_line(exc)}") from exc


def _apply_grants(conn: Connection, schema: str, admin: str, entries: Iterable[AclEntry],
                  owners: dict[str, str], revoke: bool) -> None:
    """Each grant (or revoke) as its grantor: a superuser or a member of the owner acts as
    the owner; any other grantor (a grant passed on WITH GRANT OPTION) by SET ROLE.
    ``owners``: relation name ("" for the schema) -> owner."""
    def owner(entry: AclEntry) -> str:  # FOR ROLE of a default: whose future objects
        return entry.grantor if entry.what == DEFAULT else owners[entry.name]

    todo = [e for e in entries if e.what != OWNER]
    # An option must be granted before it is passed on (and revoked after).
    todo.sort(key=lambda e: (e.grantor != owner(e), e), reverse=revoke)
    for entry in todo:
        as_grantor = entry.grantor not in (admin, owner(entry))
        if as_grantor:
            conn.exec_driver_sql(f"SET LOCAL ROLE {quote_ident(entry.grantor)}")
        conn.exec_driver_sql(_grant_sql(schema, entry, revoke))
        if as_grantor:
            conn.exec_driver_sql("RESET ROLE")


def _owner_sql(schema: str, entry: AclEntry) -> str:
    target = f"SCHEMA {quote_ident(schema)}" if entry.kind == SCHEMA else \
        f"{entry.kind} {quote_ident(schema)}.{quote_ident(entry.name)}"
    return f"ALTER {target} OWNER TO {quote_ident(entry.role)}"


def _grant_sql(schema: str, entry: AclEntry, revoke: bool) -> str:
    grantee = PUBLIC if entry.role == PUBLIC else quote_ident(entry.role)
    privilege = entry.privilege + (f" ({quote_ident(entry.column)})" if entry.column else "")
    if entry.what == DEFAULT:
        on = entry.kind
    elif entry.kind == SCHEMA:
        on = f"SCHEMA {quote_ident(schema)}"
    else:
        keyword = "SEQUENCE" if entry.kind == "SEQUENCE" else "TABLE"
        on = f"{keyword} {quote_ident(schema)}.{quote_ident(entry.name)}"
    if revoke:
        option = "GRANT OPTION FOR " if entry.grantable else ""
        sql = f"REVOKE {option}{privilege} ON {on} FROM {grantee} CASCADE"
    else:
        option = " WITH GRANT OPTION" if entry.grantable else ""
        sql = f"GRANT {privilege} ON {on} TO {grantee}{option}"
    if entry.what == DEFAULT:
        sql = (f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(entry.grantor)} IN SCHEMA "
               f"{quote_ident(schema)} {sql}")
    return sql


def differences(source: Connection, target: Connection, schema: str) -> list[str]:
    """The owners and privileges of the schema on the two sides, compared (the source's
    connecting user standing for the target's); [] when equal, else one description."""
    here = read_acl(source, schema).as_seen_by(str(
        target.exec_driver_sql("SELECT current_user").scalar_one()))
    there = read_acl(target, schema).entries
    if here == there:
        return []
    sides = [(f"{len(only)} only on the {side}: " + "; ".join(
        e.describe() for e in sorted(only, key=lambda e: (e.what != OWNER, e))))[:240]
        for side, only in (("source", here - there), ("target", there - here)) if only]
    return ["owners/privileges (" + " | ".join(sides) + ")"]
