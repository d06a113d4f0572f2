"""The table of contents of a PostgreSQL archive, checked before a restore creates anything.

``pg_restore --list`` prints one line per entry: ``<id>; <catalog> <oid> <KIND>
<schema> <name> <owner>``. A restore builds the tenant from docex-ops' own DDL and
takes only rows from the archive, so what the archive may hold is:

- the tenant's schema entry, and grants and comments on it and on its tables
  (none of which is restored);
- DocEX's tables: their rows are loaded, their definitions, constraints, defaults
  and indexes are not (ours are used);
- the tenant's own other tables (an application's), with their constraints,
  defaults, indexes and sequences: restored only with ``allow_extra``, by a role
  that can touch nothing but the scratch schema;
- in a batch archive, the schemas of the other tenants its manifests name, never read.

Anything else refuses the restore with one line naming the entry: an object in
any other schema, or of a kind DocEX's schema does not have (functions,
procedures, aggregates, views, triggers, rules, policies, types, domains,
extensions, event triggers, publications, foreign servers, large objects,
default privileges, grants on other objects, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from docex_ops.backup.archive import ArchiveContents, ArchiveRefused, RestoreSpec
from docex_ops.schema.ddl import VERSION_TABLE
from docex_ops.schema.names import TABLE_NAMES

DOCEX_TABLES = frozenset(TABLE_NAMES) | {VERSION_TABLE}

# Every kind pg_dump writes (PostgreSQL 10-17), longest first so "TABLE DATA" is not
# read as "TABLE". A kind not listed makes the entry unreadable, which refuses it.
_KINDS = sorted((
    "ACCESS METHOD", "ACL", "AGGREGATE", "BLOB", "BLOB METADATA", "BLOBS", "CAST",
    "CHECK CONSTRAINT", "COLLATION", "COMMENT", "CONSTRAINT", "CONVERSION", "DATABASE",
    "DATABASE PROPERTIES", "DEFAULT", "DEFAULT ACL", "DOMAIN", "ENCODING", "EVENT TRIGGER",
    "EXTENSION", "FK CONSTRAINT", "FOREIGN DATA WRAPPER", "FOREIGN SERVER", "FOREIGN TABLE",
    "FUNCTION", "INDEX", "INDEX ATTACH", "LARGE OBJECT", "MATERIALIZED VIEW",
    "MATERIALIZED VIEW DATA", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "POLICY",
    "PROCEDURAL LANGUAGE", "PROCEDURE", "PUBLICATION", "PUBLICATION TABLE",
    "PUBLICATION TABLES IN SCHEMA", "ROW SECURITY", "RULE", "SCHEMA", "SEARCHPATH",
    "SECURITY LABEL", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "SERVER", "SHELL TYPE",
    "STATISTICS", "STATISTICS DATA", "STDSTRINGS", "SUBSCRIPTION", "SUBSCRIPTION TABLE",
    "TABLE", "TABLE ATTACH", "TABLE DATA", "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "TRANSFORM",
    "TRIGGER", "TYPE", "USER MAPPING", "VIEW",
), key=len, reverse=True)

# Kinds a tenant schema may hold, and how their name reads: one name, or "table name".
_NAMED = {"TABLE", "TABLE DATA", "INDEX", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET"}
_ON_TABLE = {"CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "DEFAULT"}
_NOTES = {"ACL", "COMMENT"}  # grants and comments: checked, never restored
# What a grant or comment inside the schema may be on (the object's own entry is checked).
_NOTE_TARGETS = ("TABLE ", "COLUMN ", "SEQUENCE ", "INDEX ", "CONSTRAINT ")

_LINE_RE = re.compile(r"(\d+); (\d+) (\d+) (.+)")
_SHAPES = {
    "named": re.compile(r"(\S+) (\S+) (\S*)"),
    "on_table": re.compile(r"(\S+) (\S+) (\S+) (\S*)"),
    "note": re.compile(r"(\S+) (.+) (\S*)"),
}


@dataclass(frozen=True)
class TocEntry:
    line: str          # as pg_restore listed it (what pg_restore -L takes back)
    dump_id: int
    kind: str
    schema: str        # "-" for objects outside any schema
    name: str          # for grants and comments: "TABLE t", "SCHEMA s", ...
    table: str | None  # the table an entry of _ON_TABLE or "TABLE DATA" belongs to

    def describe(self) -> str:
        return f"entry {self.dump_id} ({self.kind} {self.schema} {self.name})"


def parse_line(line: str) -> TocEntry | None:
    """One listed entry; None for comments and blank lines. ValueError if unreadable."""
    if not line.strip() or line.startswith(";"):
        return None
    match = _LINE_RE.fullmatch(line)
    kind = next((k for k in _KINDS if match and match[4].startswith(k + " ")), None)
    if match is None or kind is None:
        raise ValueError(line)
    tail = match[4][len(kind) + 1:]
    # The kinds a tenant may hold are read strictly; any other is refused whatever its name
    # says, so its name is only read loosely, for the message.
    shape = ("on_table" if kind in _ON_TABLE or kind in ("TRIGGER", "RULE", "POLICY")
             else "named" if kind in _NAMED or kind == "SCHEMA" else "note")
    parts = _SHAPES[shape].fullmatch(tail)
    if parts is None:
        raise ValueError(line)
    schema = parts[1]
    if shape == "on_table":
        table, name = parts[2], f"{parts[2]} {parts[3]}"
    else:
        name = parts[2]
        table = name if kind == "TABLE DATA" else None
    return TocEntry(line, int(match[1]), kind, schema, name, table)


def check_toc(listing: str, spec: RestoreSpec) -> ArchiveContents:
    """Judge every entry of ``pg_restore --list`` output; ArchiveRefused names the first
    that a restore of ``spec.location`` must not create or read."""
    schema = spec.location
    data: dict[str, TocEntry] = {}
    extra: list[TocEntry] = []
    extra_tables: set[str] = set()
    own_schema_seen = False
    for raw in listing.splitlines():
        try:
            entry = parse_line(raw)
        except ValueError:
            raise _refuse(spec, f"entry {raw[:120]!r} cannot be read as a table of contents "
                                "line, so it cannot be checked") from None
        if entry is None:
            continue
        if entry.schema in spec.batch_locations or entry.schema == "-" and (
                entry.kind == "SCHEMA" and entry.name in spec.batch_locations
                or entry.kind in _NOTES and entry.name.startswith("SCHEMA ")
                and entry.name[len("SCHEMA "):] in spec.batch_locations):
            continue  # another tenant of a batch archive: never read
        if entry.schema == "-":
            if entry.kind == "SCHEMA" and entry.name == schema:
                own_schema_seen = True
                continue
            if entry.kind in _NOTES and entry.name == f"SCHEMA {schema}":
                continue
            raise _refuse(spec, f"{entry.describe()} is outside the tenant's schema "
                                f"{schema!r}")
        if entry.schema != schema:
            raise _refuse(spec, f"{entry.describe()} is outside the tenant's schema "
                                f"{schema!r}")
        _judge(spec, entry, data, extra, extra_tables)
    if not own_schema_seen and not data:
        raise ArchiveRefused(f"archive {spec.archive} holds no schema {schema!r}")
    missing = sorted(extra_tables - {e.name for e in extra if e.kind == "TABLE"})
    if missing:  # rows or constraints of a table the archive does not define
        raise _refuse(spec, f"table {missing[0]!r} has entries but no definition")
    return ArchiveContents(tuple(sorted(data)), tuple(sorted(extra_tables)),
                           tuple(e.line for e in data.values()) + tuple(e.line for e in extra))


def _judge(spec: RestoreSpec, entry: TocEntry, data: dict[str, TocEntry],
           extra: list[TocEntry], extra_tables: set[str]) -> None:
    """One entry inside the tenant's schema: load it, ignore it, or refuse the restore."""
    if entry.kind in _NOTES:
        if not entry.name.startswith(_NOTE_TARGETS):
            raise _refuse(spec, f"{entry.describe()} is a {entry.kind.lower()} on an object "
                                "of a kind DocEX's schema does not have")
        return
    if entry.kind not in _NAMED | _ON_TABLE:
        raise _refuse(spec, f"{entry.describe()} is a {entry.kind.lower()}, which DocEX's "
                            "schema does not have")
    owner_table = entry.table if entry.kind in _ON_TABLE else entry.name
    if entry.kind in ("TABLE", "TABLE DATA", *_ON_TABLE) and owner_table in DOCEX_TABLES:
        if entry.kind == "TABLE DATA" and entry.name != VERSION_TABLE:
            if entry.name in data:
                raise _refuse(spec, f"{entry.describe()} is a second copy of the rows of "
                                    f"table {entry.name!r}")
            data[entry.name] = entry
        return  # DocEX's own: the rows above, the structure from our DDL
    if entry.kind == "INDEX":
        extra.append(entry)  # its table is known once its SQL is read (extra objects only)
        return
    if not spec.allow_extra:
        what = (f"table {owner_table!r}" if owner_table is not None and
                entry.kind not in ("SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET")
                else f"sequence {entry.name!r}")
        raise _refuse(spec, f"{entry.describe()} belongs to {what}, which DocEX's schema does "
                            "not have; rerun with --allow-extra-objects to restore the "
                            "tenant's own tables too (created by a restricted role)")
    if entry.kind not in ("SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET"):
        assert owner_table is not None
        extra_tables.add(owner_table)
    extra.append(entry)


def _refuse(spec: RestoreSpec, why: str) -> ArchiveRefused:
    return ArchiveRefused(f"archive {spec.archive}: {why}; refused before anything was "
                          "created (a restore takes only rows of the tenant's own tables)")


_INDEX_RE = re.compile(r'CREATE (?:UNIQUE )?INDEX ("(?:[^"]|"")+"|\S+) ON (?:ONLY )?'
                       r'("(?:[^"]|"")+"|[^\s.]+)\.("(?:[^"]|"")+"|[^\s(]+)')


def index_tables(sql: str) -> dict[str, str]:
    """Index name -> table name, from the CREATE INDEX statements pg_restore writes."""
    found = {}
    for match in _INDEX_RE.finditer(sql):
        found[unquote(match[1])] = unquote(match[3])
    return found


def unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def extra_entries(contents: ArchiveContents, indexes: dict[str, str]) -> list[str]:
    """The listed lines the restricted role restores: the extra tables' entries, and the
    indexes on them (an index of ours, or one on a DocEX table, is left out)."""
    lines = []
    for line in contents.entries:
        entry = parse_line(line)
        assert entry is not None
        if entry.kind == "TABLE DATA" and entry.name in DOCEX_TABLES:
            continue
        if entry.kind == "INDEX" and indexes.get(entry.name) not in contents.extra_tables:
            continue
        lines.append(line)
    return lines


def data_entries(contents: ArchiveContents) -> list[str]:
    """The listed lines of DocEX's tables' rows."""
    return [line for line in contents.entries
            if (e := parse_line(line)) is not None and e.kind == "TABLE DATA"
            and e.name in contents.docex_tables]


def index_entries(contents: ArchiveContents) -> list[str]:
    return [line for line in contents.entries
            if (e := parse_line(line)) is not None and e.kind == "INDEX"]


def listing_file(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines))
    return path
