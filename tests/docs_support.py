"""Helpers for the document-API, audit, example and CLI tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from docex_ops.config.settings import Settings, load_settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.schema.head import docbasket


def with_files(settings: Settings, tmp_path: Path) -> Settings:
    """Document files and the audit trail inside the test's own tmp dir."""
    return dataclasses.replace(settings, documents_root=tmp_path / "documents",
                               audit_file=tmp_path / "audit.jsonl")


def write_config(settings: Settings, path: Path) -> Path:
    """``settings`` (as the test fixtures build them) written as a DocEX YAML file."""
    database: dict[str, Any]
    if settings.db_type == "postgresql":
        pg = settings.postgres
        database = {"type": "postgresql", "postgres": {
            "host": pg.host, "port": pg.port, "user": pg.user, "database": pg.database,
            "schema_template": pg.schema_template, "control_schema": pg.control_schema}}
    else:
        database = {"type": "sqlite", "sqlite": {"path_template": settings.sqlite.path_template}}
    raw: dict[str, Any] = {
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": database}
    if settings.documents_root is not None:
        raw["storage"] = {"documents_root": str(settings.documents_root)}
    if settings.audit_file is not None:
        raw["logging"] = {"audit_file": str(settings.audit_file)}
    path.write_text(yaml.safe_dump(raw))
    return path


def add_basket_row(config_file: Path, tenant_id: str) -> None:
    """One docbasket row in the tenant: a tenant with data, which drop and downgrade
    refuse without --force."""
    TenantDatabaseManager.reset()
    manager = TenantDatabaseManager(load_settings(config_file))
    now = dt.datetime(2026, 1, 1)
    with manager.tenant_transaction(tenant_id) as session:
        session.execute(docbasket.insert().values(id="bas_1", name="n", storage_config={},
                                                  status="active", created_at=now,
                                                  updated_at=now))
    TenantDatabaseManager.reset()
