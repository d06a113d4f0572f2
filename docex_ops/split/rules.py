"""Which source rows go to which tenant: one place, as portable SQL.

Every row hangs off a basket. The templates use ``{s}`` for the source
prefix (``"public".`` or ``src.``), ``x`` for the table's own rows and
``{B}`` for the set of one tenant's basket ids; the source-specific module in
backends/ fills them in. The same rules drive the plan's counts, the copy and
both verifications, so they cannot disagree.
"""

from __future__ import annotations

# Configuration: a copy in every tenant.
GLOBAL_TABLES = ("processors", "transport_routes")

# Parents before children, so every foreign key holds at each insert.
COPY_ORDER = (
    "docbasket", "processors", "transport_routes", "document", "document_metadata",
    "file_history", "operations", "operation_dependencies", "doc_events",
    "processing_operations", "route_operations",
)

_DOCS = "(SELECT d.id FROM {s}document d WHERE d.basket_id IN {B})"
_OPS = ("(SELECT o.id FROM {s}operations o JOIN {s}document d ON d.id = o.document_id "
        "WHERE d.basket_id IN {B})")
_DOC_CHILDREN = ("document_metadata", "file_history", "operations", "processing_operations")


def subset_where(table: str, drop_edges: bool) -> str | None:
    """The rows of ``table`` that one tenant receives (None: all of them)."""
    if table in GLOBAL_TABLES:
        return None
    if table == "docbasket":
        return "x.id IN {B}"
    if table == "document":
        return "x.basket_id IN {B}"
    if table in _DOC_CHILDREN:
        return f"x.document_id IN {_DOCS}"
    if table == "operation_dependencies":
        where = f"x.operation_id IN {_OPS}"
        return where + (f" AND x.depends_on IN {_OPS}" if drop_edges else "")
    if table == "doc_events":
        where = "x.basket_id IN {B}"
        return where + (f" AND (x.document_id IS NULL OR x.document_id IN {_DOCS})"
                        if drop_edges else "")
    if table == "route_operations":
        # No FK on document_id: a row naming no existing document belongs to its route,
        # whose copy is in every tenant, so it goes to every tenant.
        return (f"(x.document_id IN {_DOCS} OR x.document_id IS NULL "
                "OR x.document_id NOT IN (SELECT d.id FROM {s}document d))")
    raise KeyError(table)


def attribution_sql(table: str) -> str:
    """``(owner basket, other basket, rows)`` grouped: who owns each row, and for the two
    tables with a second edge, which basket the other end is in. Owner NULL: global."""
    if table in GLOBAL_TABLES:
        return f"SELECT NULL, NULL, count(*) FROM {{s}}{table} x"
    if table == "docbasket":
        return "SELECT x.id, NULL, count(*) FROM {s}docbasket x GROUP BY x.id"
    if table == "document":
        return "SELECT x.basket_id, NULL, count(*) FROM {s}document x GROUP BY x.basket_id"
    if table in _DOC_CHILDREN:
        return (f"SELECT d.basket_id, NULL, count(*) FROM {{s}}{table} x "
                "JOIN {s}document d ON d.id = x.document_id GROUP BY d.basket_id")
    if table == "operation_dependencies":
        return ("SELECT d1.basket_id, d2.basket_id, count(*) FROM {s}operation_dependencies x "
                "JOIN {s}operations o1 ON o1.id = x.operation_id "
                "JOIN {s}document d1 ON d1.id = o1.document_id "
                "JOIN {s}operations o2 ON o2.id = x.depends_on "
                "JOIN {s}document d2 ON d2.id = o2.document_id "
                "GROUP BY d1.basket_id, d2.basket_id")
    if table == "doc_events":
        return ("SELECT x.basket_id, d.basket_id, count(*) FROM {s}doc_events x "
                "LEFT JOIN {s}document d ON d.id = x.document_id "
                "GROUP BY x.basket_id, d.basket_id")
    if table == "route_operations":
        return ("SELECT d.basket_id, NULL, count(*) FROM {s}route_operations x "
                "LEFT JOIN {s}document d ON d.id = x.document_id GROUP BY d.basket_id")
    raise KeyError(table)


def total_sql(table: str) -> str:
    return f"SELECT count(*) FROM {{s}}{table} x"

