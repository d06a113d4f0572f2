"""Tenant rules: hostile ids are refused with a reason before any SQL or file operation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from docex_ops.cli import main
from docex_ops.config.settings import Settings
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.tenancy import (
    TenantIdError,
    UserContext,
    schema_name_for,
    sqlite_path_for,
    validate_tenant_id,
)

HOSTILE_IDS = [
    'x"; drop schema public--', "x'; drop table docbasket;--", "a;b", "a--b", "a b", " a",
    "a ", "a\tb", "a\nb", "../../etc", "..", ".", "a/b", "/etc/passwd", "a\\b", "..\\x",
    "a\x00b", "\x00", "ａｃｍｅ", "аcme", "acmé", "ß", "😀", "Acme", "ACME", "tenantA",
    "a" * 49, "a" * 200, "", "_leading", "-dash", "a-b", "a.b", "a$b", "a%b", "a*b", "a?b",
    "public", "pg_catalog", "information_schema", "a'b", 'a"b', "a(b)",
    "{tenant_id}", "pg_toast", "pg_x", "docex_ops",
]
# Valid as ids, but refused by what the template makes of them.
RESERVED_BY_TEMPLATE = {"{tenant_id}": ["public", "pg_catalog", "information_schema", "pg_x",
                                        "docex_ops"],
                        "pg_{tenant_id}": ["acme"],
                        "tenant_{tenant_id}_" + "x" * 30: ["a" * 30]}


def test_at_least_forty_hostile_ids() -> None:
    assert len(HOSTILE_IDS) >= 40


@pytest.mark.parametrize("raw", HOSTILE_IDS)
def test_hostile_id_refused_with_reason(raw: str) -> None:
    with pytest.raises(TenantIdError) as info:
        validate_tenant_id(raw)
    message = str(info.value)
    assert "tenant id" in message
    reasons = ("not allowed", "empty", "at most", "must start", "reserved")
    assert any(word in message for word in reasons)


@pytest.mark.parametrize("raw", ["a", "0", "acme", "acme_eu_1", "t" * 48, "1tenant"])
def test_valid_ids_accepted(raw: str) -> None:
    assert validate_tenant_id(raw) == raw


def test_non_string_refused() -> None:
    with pytest.raises(TenantIdError, match="must be a string"):
        validate_tenant_id(42)


def test_template_results_are_checked() -> None:
    for template, ids in RESERVED_BY_TEMPLATE.items():
        for tenant_id in ids:
            with pytest.raises(TenantIdError):
                schema_name_for(tenant_id, template)
    with pytest.raises(TenantIdError, match="63"):
        schema_name_for("a" * 48, "tenant_with_a_long_prefix_{tenant_id}")
    assert schema_name_for("acme", "tenant_{tenant_id}") == "tenant_acme"


def test_sqlite_path_must_stay_inside_storage_root(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    assert sqlite_path_for("acme", str(root / "tenant_{tenant_id}/docex.db"), root) == \
        (root / "tenant_acme" / "docex.db").resolve()
    with pytest.raises(TenantIdError, match="outside the storage root"):
        sqlite_path_for("acme", str(tmp_path / "elsewhere" / "{tenant_id}.db"), root)


def _snapshot(settings: Settings, pg_conn: Any) -> Any:
    if settings.db_type == "postgresql":
        with pg_conn.cursor() as cur:
            cur.execute("SELECT nspname FROM pg_namespace ORDER BY 1")
            return cur.fetchall()
    root = settings.sqlite.storage_root
    return sorted(os.walk(root)) if root.exists() else []


@pytest.mark.parametrize("raw", HOSTILE_IDS)
def test_hostile_ids_create_nothing(raw: str, settings: Settings, manager: TenantDatabaseManager,
                                    config_file: Path, request: Any) -> None:
    pg_conn = request.getfixturevalue("pg_conn") if settings.db_type == "postgresql" else None
    before = _snapshot(settings, pg_conn)
    with pytest.raises(ValueError):
        manager.get_tenant_engine(raw)
    with pytest.raises(ValueError):
        manager.get_tenant_engine(UserContext(user_id="u", tenant_id=raw))
    result = CliRunner().invoke(main, ["--config", str(config_file), "tenants", "provision", "--",
                                       "ok1", raw])
    assert result.exit_code == 2, result.output
    assert "tenant id" in result.output
    assert _snapshot(settings, pg_conn) == before
    assert manager.list_tenant_databases() == []
