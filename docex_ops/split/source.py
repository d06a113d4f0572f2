"""The source of a split: a single-tenant DocEX database, read inside one snapshot.

PostgreSQL: a schema (``public`` by default) read in a REPEATABLE READ, READ
ONLY transaction whose snapshot is exported (``pg_export_snapshot``); every
worker imports it (``SET TRANSACTION SNAPSHOT``), so all tenants are cut from
the same instant while DocEX keeps writing. SQLite: the file is first copied
with SQLite's online backup API (opened read-only) into a scratch file; that
copy is the snapshot every worker reads. Neither path ever writes the source.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from docex_ops.backends.catalog import Catalog, pg_catalog, sqlite_catalog
from docex_ops.backends.digest import TableDigest, digest_sql
from docex_ops.backends.pg_sql import quote_ident
from docex_ops.backends.registry import KindRegistry
from docex_ops.backends.scratch import hold_new_folder
from docex_ops.backends.sqlite import open_readonly, readonly_uri
from docex_ops.backends.sqlite_digest import digest_table
from docex_ops.backup.sqlite import backup_file
from docex_ops.config.settings import ConfigError, PostgresSettings
from docex_ops.split.source_contents import pg_extra_objects, sqlite_extra_objects
from docex_ops.tenancy import check_schema_name

_PG_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
# search_path: every source name is qualified, and nothing the source database defines
# (an operator or function in public) may stand in for a built-in the queries use.
_PG_LOCAL = ("SET LOCAL DateStyle TO 'ISO, YMD'", "SET LOCAL TimeZone TO 'UTC'",
             "SET LOCAL search_path TO pg_catalog, pg_temp")
# A literal IN list on PostgreSQL (psycopg2 renders a tuple as one): the planner sees the
# basket ids, so it estimates the subset and uses the basket_id index.
PG_BASKETS = "%(baskets)s"
SQLITE_BASKETS = "(SELECT value FROM json_each(:baskets))"


@dataclass(frozen=True)
class SourceSpec:
    """Where the source is: a PostgreSQL schema or a SQLite file."""

    kind: str                          # postgresql | sqlite
    postgres: PostgresSettings | None = None
    schema: str = "public"
    path: Path | None = None

    def describe(self) -> str:
        if self.postgres is not None:
            return f"{self.postgres.describe()} schema {self.schema}"
        return f"sqlite:{self.path}"


def parse_source(text: str, schema: str = "public") -> SourceSpec:
    """A PostgreSQL URL, a ``sqlite:///`` URL or a SQLite file path; ConfigError if neither."""
    if "://" in text:
        try:
            url = make_url(text)
        except ArgumentError as exc:
            raise ConfigError(f"--source {text!r} is not a URL; use postgresql://user@host/db, "
                              "sqlite:///path or a file path") from exc
        backend = url.get_backend_name()
        if backend in ("postgresql", "postgres"):
            if schema != "public":
                check_schema_name_source(schema)
            pg = PostgresSettings(host=url.host or "localhost", port=url.port or 5432,
                                  database=url.database or "docex",
                                  user=url.username or "postgres", password=url.password,
                                  sslmode=str(url.query["sslmode"]) if "sslmode" in url.query
                                  else None)
            return SourceSpec("postgresql", pg, schema)
        if backend == "sqlite" and url.database:
            text = url.database
        else:
            raise ConfigError(f"--source: {backend}:// is not supported; use a postgresql:// "
                              "or sqlite:/// URL or a file path")
    path = Path(text).resolve()
    if not path.is_file():
        raise ConfigError(f"--source: SQLite file {path} does not exist")
    return SourceSpec("sqlite", path=path)


def open_source(text: str, schema: str = "public") -> SplitSource:
    """The split source ``--source`` / ``--source-schema`` name (nothing opened yet)."""
    return SplitSource(parse_source(text, schema))


def check_schema_name_source(schema: str) -> None:
    try:
        check_schema_name(schema)
    except ValueError as exc:
        raise ConfigError(f"--source-schema: {exc}") from exc


class SourceView(ABC):
    """One connection reading the snapshot; ``prefix``/``baskets`` fill the rule templates."""

    kind: str
    prefix: str
    baskets: str

    def render(self, template: str) -> str:
        return template.replace("{s}", self.prefix).replace("{B}", self.baskets)

    @abstractmethod
    def params(self, baskets: list[str]) -> dict[str, Any]:
        """The query parameters that fill ``{B}`` with ``baskets``."""

    @abstractmethod
    def fetch(self, template: str, baskets: list[str] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a rule query on the snapshot."""

    @abstractmethod
    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, declared type) of a source table, in table order."""

    @abstractmethod
    def digest(self, table: str, where: str | None, baskets: list[str]) -> TableDigest:
        """Count and checksum of the rows ``where`` selects (definition in archive.py)."""

    @abstractmethod
    def stream(self, table: str, columns: list[str], where: str | None, baskets: list[str],
               batch: int) -> Iterator[list[tuple[Any, ...]]]:
        """The selected rows in batches; JSON as its stored text."""

    @abstractmethod
    def revision(self) -> str | None:
        """The source's alembic_version, if it has one."""

    @abstractmethod
    def catalog(self) -> Catalog:
        """The source's structure, to recognise its revision."""

    def tables(self) -> set[str]:
        return {name for name in self.catalog()}

    @abstractmethod
    def extra_objects(self) -> list[tuple[str, bool]]:
        """What the source holds besides DocEX's tables and their keys and indexes:
        (description, whether a split may leave it out). Not ignorable: a DocEX table
        name that reading would not read as a plain table (see split.plan)."""


class PgView(SourceView):
    kind = "postgresql"
    baskets = PG_BASKETS

    def __init__(self, conn: Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        self.prefix = quote_ident(schema) + "."
        self._columns: dict[str, list[tuple[str, str]]] = {}  # fixed within the snapshot

    def params(self, baskets: list[str]) -> dict[str, Any]:
        return {"baskets": tuple(baskets) or (None,)}  # (NULL): an empty set

    def fetch(self, template: str, baskets: list[str] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.exec_driver_sql(self.render(template),
                                                            self.params(baskets or []))]

    def columns(self, table: str) -> list[tuple[str, str]]:
        if table not in self._columns:
            self._columns[table] = [
                (name, type_) for t, name, type_, *_ in
                self.conn.exec_driver_sql(_PG_COLUMNS, {"s": self.schema, "t": table})
                if t == table]
        return self._columns[table]

    def digest(self, table: str, where: str | None, baskets: list[str]) -> TableDigest:
        cols = sorted((c for c, _ in self.columns(table)), key=lambda c: c.encode())
        sql = digest_sql(self.schema, table, cols, self.render(where) if where else None)
        _, count, checksum = self.conn.exec_driver_sql(sql, self.params(baskets)).one()
        return TableDigest(int(count), str(checksum))

    def stream(self, table: str, columns: list[str], where: str | None, baskets: list[str],
               batch: int) -> Iterator[list[tuple[Any, ...]]]:
        types = dict(self.columns(table))
        select = ", ".join(quote_ident(c) + ("::text" if types[c] in ("json", "jsonb") else "")
                           for c in columns)
        sql = (f"DECLARE docex_split NO SCROLL CURSOR FOR SELECT {select} "
               f"FROM {self.prefix}{quote_ident(table)} x"
               + (f" WHERE {self.render(where)}" if where else ""))
        self.conn.exec_driver_sql(sql, self.params(baskets))
        try:
            while True:
                rows = self.conn.exec_driver_sql(f"FETCH FORWARD {int(batch)} FROM docex_split"
                                                 ).all()
                if not rows:
                    return
                yield [tuple(r) for r in rows]
        finally:
            self.conn.exec_driver_sql("CLOSE docex_split")

    def revision(self) -> str | None:
        if not self.conn.exec_driver_sql(
                "SELECT to_regclass(%(t)s)", {"t": f"{self.prefix}alembic_version"}).scalar():
            return None
        value = self.conn.exec_driver_sql(
            f"SELECT max(version_num) FROM {self.prefix}alembic_version").scalar()
        return None if value is None else str(value)

    def catalog(self) -> Catalog:
        return pg_catalog(self.conn, self.schema)

    def extra_objects(self) -> list[tuple[str, bool]]:
        return pg_extra_objects(self.conn, self.schema)


_PG_COLUMNS = """
SELECT c.relname, a.attname::text, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(s)s AND c.relname = %(t)s AND c.relkind = 'r' AND a.attnum > 0
   AND NOT a.attisdropped ORDER BY a.attnum"""


class SqliteView(SourceView):
    kind = "sqlite"
    baskets = SQLITE_BASKETS

    def __init__(self, conn: sqlite3.Connection, schema: str = "main",
                 path: str | None = None) -> None:
        self.conn, self.schema, self.path = conn, schema, path
        self.prefix = f'"{schema}".'

    def params(self, baskets: list[str]) -> dict[str, Any]:
        return {"baskets": json.dumps(baskets)}

    def fetch(self, template: str, baskets: list[str] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(self.render(template),
                                                    self.params(baskets or []))]

    def columns(self, table: str) -> list[tuple[str, str]]:
        return [(name, decl or "") for _cid, name, decl, *_ in
                self.conn.execute(f'PRAGMA "{self.schema}".table_info("{table}")')]

    def digest(self, table: str, where: str | None, baskets: list[str]) -> TableDigest:
        return digest_table(self.conn, table, self.schema, self.render(where) if where else None,
                            self.params(baskets))

    def stream(self, table: str, columns: list[str], where: str | None, baskets: list[str],
               batch: int) -> Iterator[list[tuple[Any, ...]]]:
        select = ", ".join(f'x."{c}"' for c in columns)
        cursor = self.conn.execute(
            f'SELECT {select} FROM {self.prefix}"{table}" x'
            + (f" WHERE {self.render(where)}" if where else ""), self.params(baskets))
        while rows := cursor.fetchmany(batch):
            yield rows

    def revision(self) -> str | None:
        present = self.conn.execute(
            f"SELECT 1 FROM {self.prefix}sqlite_master WHERE name = 'alembic_version'").fetchone()
        if not present:
            return None
        row = self.conn.execute(f"SELECT max(version_num) FROM {self.prefix}alembic_version"
                                ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def catalog(self) -> Catalog:
        # Its own read-only connection: closing it must not end the snapshot's.
        assert self.path is not None, "catalog() needs the snapshot file"
        path = self.path
        engine = create_engine("sqlite://", creator=lambda: open_readonly(path),
                               poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return sqlite_catalog(conn)
        finally:
            engine.dispose()

    def tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute(
            f"SELECT name FROM {self.prefix}sqlite_master WHERE type = 'table'")}

    def extra_objects(self) -> list[tuple[str, bool]]:
        return sqlite_extra_objects(self.conn, self.prefix)


class SplitSource:
    """Opens the snapshot (``snapshot``) and worker views on it (``view``)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        assert self.spec.postgres is not None
        if self._engine is None:
            self._engine = create_engine(
                self.spec.postgres.url(application_name="docex-ops-split"),
                poolclass=NullPool, isolation_level="AUTOCOMMIT")
        return self._engine

    def snapshot(self, scratch_dir: Path | None = None
                 ) -> AbstractContextManager[tuple[SourceView, str]]:
        """The coordinator's view and the token workers pass to ``view``.

        SQLite: the snapshot copy is a held scratch folder in ``scratch_dir`` (the
        targets' storage root; default the temp folder), so `cleanup` finds it if the
        process dies."""
        return SNAPSHOTS.for_kind(self.spec.kind).snapshot(self, scratch_dir)

    def view(self, token: str) -> AbstractContextManager[SourceView]:
        """A worker's own connection on the same snapshot."""
        return SNAPSHOTS.for_kind(self.spec.kind).view(self, token)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class _PgSnapshots:
    """An exported snapshot of a READ ONLY, REPEATABLE READ transaction."""

    @contextmanager
    def snapshot(self, source: SplitSource, scratch_dir: Path | None
                 ) -> Iterator[tuple[SourceView, str]]:
        with source.engine.connect() as conn:
            conn.exec_driver_sql(_PG_BEGIN)
            token = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            for statement in _PG_LOCAL:
                conn.exec_driver_sql(statement)
            try:
                yield PgView(conn, source.spec.schema), token
            finally:
                conn.exec_driver_sql("ROLLBACK")

    @contextmanager
    def view(self, source: SplitSource, token: str) -> Iterator[SourceView]:
        with source.engine.connect() as conn:
            pg_begin_snapshot(conn, token, read_only=True)
            try:
                yield PgView(conn, source.spec.schema)
            finally:
                conn.exec_driver_sql("ROLLBACK")


class _SqliteSnapshots:
    """A copy of the file taken with SQLite's backup API: every worker reads the copy."""

    @contextmanager
    def snapshot(self, source: SplitSource, scratch_dir: Path | None
                 ) -> Iterator[tuple[SourceView, str]]:
        assert source.spec.path is not None
        parent = scratch_dir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        with hold_new_folder(parent, "split") as folder:
            copy = folder / "snapshot.db"
            backup_file(source.spec.path, copy)
            with self.view(source, str(copy)) as view:
                yield view, str(copy)

    @contextmanager
    def view(self, source: SplitSource, token: str) -> Iterator[SourceView]:
        with closing(sqlite3.connect(readonly_uri(token), uri=True,
                                     isolation_level=None)) as conn:
            conn.execute("BEGIN")
            yield SqliteView(conn, path=token)
            conn.execute("ROLLBACK")


PG_SNAPSHOTS, SQLITE_SNAPSHOTS = _PgSnapshots(), _SqliteSnapshots()
SNAPSHOTS = KindRegistry[_PgSnapshots | _SqliteSnapshots]("split source", {
    "postgresql": "docex_ops.split.source:PG_SNAPSHOTS",
    "sqlite": "docex_ops.split.source:SQLITE_SNAPSHOTS",
})


def pg_begin_snapshot(conn: Connection, token: str, read_only: bool) -> None:
    """Start a REPEATABLE READ transaction on an exported snapshot (must come first)."""
    conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ"
                         + (" READ ONLY" if read_only else ""))
    conn.exec_driver_sql("SET TRANSACTION SNAPSHOT %(t)s", {"t": token})
    for statement in _PG_LOCAL:
        conn.exec_driver_sql(statement)
