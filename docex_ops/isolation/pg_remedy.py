"""The SQL that removes a PostgreSQL finding, complete and ready to paste.

Every identifier is quoted (names come from the catalog unquoted, so a name
with a dot, a quote or capitals stays one name), argument types are the
catalog's own SQL, and nothing CASCADEs: a DROP that something else still
needs fails and says what, instead of reaching into another tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.isolation.pg_facts_code import ObjectAddress

PUBLIC = "PUBLIC"

# Object types dropped by name, as DROP <keyword> schema.name.
_DROPPED_BY_NAME = {"table": "TABLE", "view": "VIEW", "materialized view": "MATERIALIZED VIEW",
                    "sequence": "SEQUENCE", "foreign table": "FOREIGN TABLE", "index": "INDEX"}
_ROUTINES = {"function": "FUNCTION", "procedure": "PROCEDURE", "aggregate": "AGGREGATE"}
_ON_TABLE = {"trigger": "TRIGGER", "rule": "RULE", "policy": "POLICY"}
# The keyword GRANT/REVOKE and ALTER ... OWNER use for each kind of object.
_GRANT_KEYWORD = {"schema": "SCHEMA", "sequence": "SEQUENCE", "function": "FUNCTION",
                  "procedure": "PROCEDURE", "aggregate": "FUNCTION", "type": "TYPE"}
_OWNER_KEYWORD = {"schema": "SCHEMA", "table": "TABLE", "view": "VIEW",
                  "materialized view": "MATERIALIZED VIEW", "foreign table": "FOREIGN TABLE",
                  "sequence": "SEQUENCE", "function": "FUNCTION", "procedure": "PROCEDURE",
                  "aggregate": "AGGREGATE", "type": "TYPE"}


def qualified(*names: str) -> str:
    return ".".join(quote_ident(n) for n in names)


def role_sql(role: str) -> str:
    """A grantee: PUBLIC is a keyword, every other role a quoted name."""
    return PUBLIC if role == PUBLIC else quote_ident(role)


def drop(obj: ObjectAddress) -> str | None:
    """The statement that removes ``obj``, or None for a kind this does not know."""
    names, kind = obj.names, obj.type
    if kind in _DROPPED_BY_NAME:
        return f"DROP {_DROPPED_BY_NAME[kind]} {qualified(*names)};"
    if kind == "type" and len(names) == 1:  # the catalog's own qualified, quoted type name
        return f"DROP TYPE {names[0]};"
    if kind in _ROUTINES:
        return f"DROP {_ROUTINES[kind]} {qualified(*names)}({', '.join(obj.args)});"
    if kind in _ON_TABLE and len(names) == 3:
        return f"DROP {_ON_TABLE[kind]} {quote_ident(names[2])} ON {qualified(*names[:2])};"
    if kind == "table constraint" and len(names) == 3:
        return f"ALTER TABLE {qualified(*names[:2])} DROP CONSTRAINT {quote_ident(names[2])};"
    if kind == "domain constraint" and len(names) == 1 and len(obj.args) == 1:
        return f"ALTER DOMAIN {names[0]} DROP CONSTRAINT {quote_ident(obj.args[0])};"
    if kind == "default value" and len(names) == 3:
        return (f"ALTER TABLE {qualified(*names[:2])} ALTER COLUMN {quote_ident(names[2])} "
                "DROP DEFAULT;")
    if kind == "table column" and len(names) == 3:
        return f"ALTER TABLE {qualified(*names[:2])} DROP COLUMN {quote_ident(names[2])};"
    if kind == "event trigger" and names:
        return f"DROP EVENT TRIGGER {quote_ident(names[0])};"
    if kind == "publication" and names:
        return f"DROP PUBLICATION {quote_ident(names[0])};"
    return None


def grant_target(kind: str, names: Sequence[str], args: str = "") -> str:
    """``ON <keyword> <object>`` of a GRANT/REVOKE (a column: ``(col) ON TABLE t``)."""
    if kind == "column":
        return f"({quote_ident(names[2])}) ON TABLE {qualified(*names[:2])}"
    keyword = _GRANT_KEYWORD.get(kind, "TABLE")  # views, foreign tables: ON TABLE
    target = qualified(*names)
    if kind in _ROUTINES:
        target += f"({args})"
    return f"ON {keyword} {target}"


def revoke(privileges: Iterable[str], kind: str, names: Sequence[str], grantee: str,
           args: str = "") -> str:
    """REVOKE of ``privileges`` (each once, in order) on one object."""
    privs = ", ".join(dict.fromkeys(privileges))
    target = grant_target(kind, names, args)
    if kind == "column":  # REVOKE SELECT (col) ON TABLE t
        column, _, rest = target.partition(" ON ")
        return f"REVOKE {privs} {column} ON {rest} FROM {role_sql(grantee)};"
    return f"REVOKE {privs} {target} FROM {role_sql(grantee)};"


def owner_to(kind: str, names: Sequence[str], new_owner: str, args: str = "") -> str:
    target = qualified(*names) + (f"({args})" if kind in _ROUTINES else "")
    return f"ALTER {_OWNER_KEYWORD.get(kind, 'TABLE')} {target} OWNER TO {quote_ident(new_owner)};"


def rename(kind: str, names: Sequence[str], new_name: str) -> str:
    """Renames a relation (keeps its rows, frees its name)."""
    keyword = _OWNER_KEYWORD.get(kind, "TABLE")
    return f"ALTER {keyword} {qualified(*names)} RENAME TO {quote_ident(new_name)};"


def revoke_membership(group: str, member: str) -> str:
    return f"REVOKE {quote_ident(group)} FROM {quote_ident(member)};"


def joined(statements: Iterable[str | None]) -> str | None:
    """Several statements as one remedy (each once, in order); None when there are none."""
    kept = list(dict.fromkeys(s for s in statements if s))
    return "\n".join(kept) or None


def label(obj: ObjectAddress) -> str:
    """How a finding names the object: ``view public.peek``, ``trigger t on public.x``."""
    names = obj.names
    if obj.type in _ON_TABLE and len(names) == 3:
        return f"{obj.type} {names[2]} on {names[0]}.{names[1]}"
    if obj.type in ("table constraint", "default value", "table column") and len(names) == 3:
        return f"{obj.type} {names[2]} on {names[0]}.{names[1]}"
    if obj.type == "domain constraint" and obj.args:
        return f"{obj.type} {obj.args[0]} on {names[0]}"
    text = f"{obj.type} {'.'.join(names)}"
    return text + (f"({', '.join(obj.args)})" if obj.type in _ROUTINES else "")


def allow_names(obj: ObjectAddress) -> tuple[str, ...]:
    """What ``--allow`` may name to accept ``obj``: its name, schema.name, or the whole
    dotted path (``public.x.trigger``)."""
    names = obj.names
    if not names:
        return ()
    return tuple(dict.fromkeys((names[-1], f"{names[0]}.{names[-1]}", ".".join(names))))
