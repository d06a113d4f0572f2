"""Helpers for the document-API, audit and example tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from docex_ops.config.settings import Settings


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
