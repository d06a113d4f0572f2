"""``DocEX``: a tenant's document API, routed by ``UserContext.tenant_id``.

Unlike DocEX's own client this is not a singleton: any number of instances,
for any tenants, live side by side in one process and in threads. Every
database access goes through the shared ``TenantDatabaseManager``'s
``tenant_transaction``, so connections are pooled per tenant and closing a
tenant's connections never breaks an instance (it reconnects lazily).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import insert, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from docex_ops import audit_trail
from docex_ops.compat.docex import records
from docex_ops.compat.docex.basket import Basket, basket_from_row
from docex_ops.compat.docex.tenant_dirs import files_dir
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket
from docex_ops.tenancy import UserContext


class DocEX:
    """The document API of one tenant.

    Raises ValueError when no tenant is given (database-level mode needs one)
    or the id breaks the tenant rules, and RuntimeError (with the cause) when
    the tenant's database cannot be reached or created.
    """

    def __init__(self, user_context: UserContext | None = None) -> None:
        manager = TenantDatabaseManager()
        if not manager.settings.database_level:
            raise ValueError(
                "docex-ops' document API serves database-level tenants only; "
                f"security.multi_tenancy_model is {manager.settings.multi_tenancy_model!r} "
                f"in {manager.settings.source}")
        self.user_context = user_context
        self.tenant_id = manager.resolve_tenant(user_context)
        # DocEX initializes the tenant up front: a missing tenant is provisioned
        # now (routing on) and an unreachable database fails here, not later.
        manager.get_tenant_engine(self.tenant_id)

    def __repr__(self) -> str:
        return f"DocEX(tenant_id={self.tenant_id!r})"

    @property
    def actor(self) -> str | None:
        return self.user_context.user_id if self.user_context else None

    @property
    def files_dir(self) -> str:
        """The tenant's own directory for document files."""
        return str(files_dir(TenantDatabaseManager().backend, self.tenant_id))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session on this tenant; any database failure becomes RuntimeError."""
        try:
            with TenantDatabaseManager().tenant_transaction(self.tenant_id) as session:
                yield session
        except SQLAlchemyError as exc:  # the manager already maps driver errors
            raise RuntimeError(f"tenant {self.tenant_id!r}: database error: "
                               f"{str(exc).splitlines()[0]}") from exc

    def create_basket(self, name: str, description: str | None = None) -> Basket:
        """A new basket; ValueError if the tenant already has one of that name.

        The name is sanitized as DocEX does (``my invoices`` -> ``my_invoices``)."""
        clean = records.sanitize_name(name)
        basket_id = records.new_id("basket")
        manager = TenantDatabaseManager()
        directory = files_dir(manager.backend, self.tenant_id) / records.basket_dir_name(
            clean, basket_id)
        created = records.now()
        try:
            with self.transaction() as session:
                exists = session.execute(
                    select(docbasket.c.id).where(docbasket.c.name == clean)).first()
                if exists is not None:
                    raise ValueError(f"A basket with name {clean!r} already exists "
                                     f"in tenant {self.tenant_id!r}")
                session.execute(insert(docbasket).values(
                    id=basket_id, name=clean, description=description,
                    storage_config=records.storage_config_column(
                        {"type": "filesystem", "path": str(directory)}),
                    status=records.BASKET_STATUS, created_at=created, updated_at=created))
                row = session.execute(
                    select(docbasket).where(docbasket.c.id == basket_id)).one()
        except RuntimeError as exc:
            audit_trail.record("basket.create", self.tenant_id, clean, audit_trail.FAILED,
                         {"error": str(exc)}, actor=self.actor)
            raise
        audit_trail.record("basket.create", self.tenant_id, basket_id, audit_trail.OK,
                     {"name": clean, "path": str(directory)}, actor=self.actor)
        return basket_from_row(row, self)

    def list_baskets(self) -> list[Basket]:
        """This tenant's baskets, newest first (DocEX's default order)."""
        with self.transaction() as session:
            rows = session.execute(select(docbasket).order_by(
                docbasket.c.created_at.desc(), docbasket.c.name)).all()
        return [basket_from_row(r, self) for r in rows]

    def get_basket(self, name_or_id: str) -> Basket | None:
        """The basket with this id, else with this name, else None."""
        with self.transaction() as session:
            rows = session.execute(select(docbasket).where(
                or_(docbasket.c.id == name_or_id, docbasket.c.name == name_or_id))).all()
        by_id = [r for r in rows if r.id == name_or_id]
        chosen = by_id or rows
        return basket_from_row(chosen[0], self) if chosen else None
