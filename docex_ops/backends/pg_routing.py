"""Routing tenant connections to their schema, with or without a pooler in between.

``none``: the server routes the connection at start-up (libpq ``options``, ``-c
search_path``); each new connection is checked once to be in the tenant's schema, so a
pooler that ignores startup parameters fails closed instead of serving ``public``.

Behind PgBouncer (``pgbouncer_transaction`` / ``pgbouncer_session``) one server connection
serves many tenants, so the route belongs to the transaction: the first statement of every
transaction is sent behind one statement that does ``set_config('search_path', <schema>,
true)`` (SET LOCAL) and checks that ``current_schema()`` is the tenant's, all in the
statement's own round trip. A mismatch (the schema is gone, renamed or not usable) aborts
the statement before it runs, rolls back and raises MisroutedError naming the tenant.

Why no tenant SQL can run outside a routed transaction, by construction: the route lives
in the psycopg2 cursor class of every tenant connection (``cursor_factory``), below
SQLAlchemy, the ORM and raw DBAPI use alike. A statement that finds the connection idle
(no transaction open) routes first; autocommit, which would run statements outside any
transaction, is refused; so are WITH HOLD cursors (they outlive the transaction). Nothing
session-level is issued on a tenant connection: no session SET, no LISTEN, no session
advisory locks, and psycopg2 uses no server-side prepared statements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg2  # type: ignore[import-untyped]
from psycopg2 import extensions

from docex_ops.backends.base import MisroutedError
from docex_ops.backends.pg_sql import quote_ident

ROUTE_SQL = ("SELECT pg_catalog.set_config('search_path', %s, true), "
             "pg_catalog.current_schema()")
CHECK_SQL = "SELECT pg_catalog.current_schema()"
# Inside a transaction (routed when it began) the route holds; any other status, idle or
# unknown (a broken connection), routes first: fail closed.
_IN_TRANSACTION = (extensions.TRANSACTION_STATUS_INTRANS, extensions.TRANSACTION_STATUS_INERROR,
                   extensions.TRANSACTION_STATUS_ACTIVE)
USE_POOLER = ("set database.postgres.pooler: pgbouncer_transaction (and "
              "database.postgres.direct to PostgreSQL itself)")


def misrouted(tenant_id: str, schema: str, found: str | None, how: str) -> MisroutedError:
    return MisroutedError(
        f"tenant {tenant_id!r}: the connection is in schema {found or 'none'}, not "
        f"{schema} ({how}); the transaction was rolled back before any query ran")


MARKER = "docex-ops misrouted"


def route_prefix(schema: str) -> str:
    """The route and its check as one statement that runs ahead of a transaction's first
    statement, in the same round trip. CASE evaluates its branches in order, and
    current_schema() (stable, never folded at plan time) sees the set_config before it; a
    check that fails raises (a cast of the marker to int), aborting the statement that
    follows. One statement, not two: each costs the server a parse, plan and execute."""
    literal = "'" + schema.replace("'", "''") + "'"
    path = "'" + quote_ident(schema).replace("'", "''") + "'"
    return (f"SELECT CASE WHEN pg_catalog.set_config('search_path', {path}, true) IS NULL "
            f"THEN NULL WHEN pg_catalog.current_schema() = {literal} THEN 0 ELSE "
            f"('{MARKER}: ' || coalesce(pg_catalog.current_schema(), 'none'))::int END;\n")


class RoutedCursor(extensions.cursor):  # type: ignore[misc]
    """A cursor whose connection's every transaction begins routed to one tenant."""

    tenant_id = ""
    schema = ""
    path = ""
    prefix = ""       # route_prefix(schema)
    prefix_args = ""  # the same with % doubled, for queries with parameters

    def _must_route(self) -> bool:
        conn = self.connection
        if conn.get_transaction_status() in _IN_TRANSACTION:
            return False  # inside a transaction this cursor class began (or a failed one)
        if conn.autocommit:
            raise RuntimeError(f"tenant {self.tenant_id!r}: autocommit is refused on tenant "
                               "connections behind a pooler: every statement must run in a "
                               "routed transaction")
        if self.withhold:
            raise RuntimeError(f"tenant {self.tenant_id!r}: WITH HOLD cursors outlive the "
                               "transaction and are refused behind a pooler")
        return True

    def _route(self) -> None:
        """The route in a round trip of its own (named cursors, COPY, executemany)."""
        if not self._must_route():
            return
        with extensions.cursor(self.connection) as cur:
            cur.execute(ROUTE_SQL, (self.path,))
            row = cur.fetchone()
        found = row[1] if row else None
        if found != self.schema:
            self.connection.rollback()
            raise misrouted(self.tenant_id, self.schema, found, "checked after SET LOCAL")

    def execute(self, query: Any, vars: Any = None) -> Any:  # noqa: A002 - DBAPI's name
        if self.name is not None or not isinstance(query, str | bytes):
            self._route()
            return super().execute(query, vars)
        if not self._must_route():
            return super().execute(query, vars)
        prefix = self.prefix if vars is None else self.prefix_args
        routed = prefix + query if isinstance(query, str) else prefix.encode() + query
        try:
            return super().execute(routed, vars)
        except psycopg2.DataError as exc:
            if MARKER not in str(exc):
                raise
            self.connection.rollback()
            found = str(exc).split(MARKER + ": ", 1)[1].split('"', 1)[0]
            raise misrouted(self.tenant_id, self.schema, None if found == "none" else found,
                            "checked after SET LOCAL") from None

    def executemany(self, query: Any, vars_list: Any) -> Any:
        self._route()
        return super().executemany(query, vars_list)

    def callproc(self, procname: Any, parameters: Any = None) -> Any:
        self._route()
        return super().callproc(procname, parameters)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
        self._route()
        return super().copy_expert(sql, file, size)

    def copy_from(self, *args: Any, **kwargs: Any) -> Any:
        self._route()
        return super().copy_from(*args, **kwargs)

    def copy_to(self, *args: Any, **kwargs: Any) -> Any:
        self._route()
        return super().copy_to(*args, **kwargs)


def connect_args(tenant_id: str, schema: str, per_transaction: bool) -> dict[str, Any]:
    """What a tenant engine passes to psycopg2.connect for its routing mode."""
    if not per_transaction:
        # Routed at connect time by the server itself: no extra round trip per
        # checkout, and nothing a session can forget to set.
        return {"options": f"-c search_path={schema}"}
    prefix = route_prefix(schema)
    cursor_class = type(f"RoutedCursor_{schema}", (RoutedCursor,),
                        {"tenant_id": tenant_id, "schema": schema, "path": quote_ident(schema),
                         "prefix": prefix, "prefix_args": prefix.replace("%", "%%")})
    return {"cursor_factory": cursor_class}


def connect_check(tenant_id: str, schema: str) -> Callable[[Any, Any], None]:
    """A "connect" listener for connect-time routing: the new connection is in the
    tenant's schema, or it is closed with the reason (a pooler dropping ``options``)."""

    def check(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(CHECK_SQL)
            row = cur.fetchone()
        dbapi_conn.rollback()
        found = row[0] if row else None
        if found != schema:
            raise misrouted(tenant_id, schema, found,
                            "the startup parameter search_path was not applied: a pooler "
                            "that ignores startup parameters? " + USE_POOLER)

    return check


def probe_startup(dsn: dict[str, Any]) -> None:
    """Once per server before the first connect-time routed engine: does the endpoint
    honour the ``options`` startup parameter? Raises RuntimeError saying which
    ``pooler`` setting to use when it refuses or ignores it."""
    where = f"{dsn.get('host')}:{dsn.get('port')}"
    try:
        conn = psycopg2.connect(**dsn, options="-c search_path=pg_catalog")
    except psycopg2.OperationalError as exc:
        if "unsupported startup parameter" not in str(exc):
            raise
        raise RuntimeError(f"{where} refuses the startup parameter that routes tenants "
                           f"({str(exc).strip().splitlines()[0]}): a pooler such as "
                           f"PgBouncer; {USE_POOLER}") from exc
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.current_setting('search_path')")
            row = cur.fetchone()
        conn.rollback()
    finally:
        conn.close()
    if row is None or row[0] != "pg_catalog":
        raise RuntimeError(f"{where} ignores the startup parameter that routes tenants "
                           f"(search_path is {row[0] if row else None!r}): a pooler with "
                           f"ignore_startup_parameters = options would send every tenant "
                           f"to the same schema; {USE_POOLER}")


def probe_transactions(dsn: dict[str, Any]) -> bool:
    """Once per server before the first per-transaction routed engine: does the pooler let
    a transaction of several statements through? PgBouncer in statement mode closes the
    connection at the transaction's second statement (psycopg2 only reports that the
    server closed it), so every tenant would fail alike: raise RuntimeError saying so.
    False when the endpoint cannot be reached at all (the engine's own connect reports
    that, and the probe runs again next time)."""
    where = f"{dsn.get('host')}:{dsn.get('port')}"
    try:
        conn = psycopg2.connect(**dsn)
    except psycopg2.OperationalError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.execute("SELECT 1")
        conn.rollback()
    except psycopg2.OperationalError as exc:
        cause = str(exc).strip().splitlines()[0]
        raise RuntimeError(f"{where} closed the connection inside a transaction ({cause}): "
                           "PgBouncer with pool_mode = statement? Tenant transactions cannot "
                           "be routed there (statement mode is not supported); set pool_mode "
                           "= transaction (or session) in pgbouncer.ini") from exc
    finally:
        conn.close()
    return True
