"""The audit trail: lines from provisioning, drops and document writes; `audit tail`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from docs_support import with_files, write_config
from json_support import json_data

from docex_ops import UserContext, audit_trail
from docex_ops.cli import main
from docex_ops.compat.docex import DocEX
from docex_ops.config.settings import ConfigError, Settings, settings_from_mapping
from docex_ops.manager.tenant_manager import TenantDatabaseManager


@pytest.fixture
def audited(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """A config file whose audit trail and document files live in tmp_path."""
    path = write_config(with_files(settings, tmp_path), tmp_path / "config.yaml")
    yield path
    TenantDatabaseManager.reset()
    audit_trail.set_actor(None)
    audit_trail.show_on_stderr(False)


def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def _lines(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def test_cli_changes_are_audited_with_actor(audited: Path, tmp_path: Path) -> None:
    code, _, err = _cli(audited, "--actor", "dba-jane", "tenants", "provision", "a", "b")
    assert code == 0
    lines = _lines(tmp_path)
    assert [(x["tenant"], x["action"], x["outcome"], x["operator"]) for x in lines] == [
        ("a", "tenant.provision", "ok", "dba-jane"), ("b", "tenant.provision", "ok", "dba-jane")]
    assert lines[0]["detail"] == {"trigger": "explicit", "revision": "0003_object_paths"}
    assert set(lines[0]) == {"time", "operator", "tenant", "action", "target", "outcome",
                             "detail"}
    # A configured file: the lines go there, not to stderr too (unless --audit-stderr).
    assert not [x for x in err.splitlines() if x.startswith("{")]

    assert _cli(audited, "tenants", "provision", "a")[0] == 0  # exists: a no-op, no line
    assert len(_lines(tmp_path)) == 2
    assert _cli(audited, "tenants", "drop", "a", "--dry-run")[0] == 0
    assert _cli(audited, "tenants", "drop", "a", "--yes")[0] == 0
    drop = _lines(tmp_path)[-1]
    assert (drop["tenant"], drop["action"], drop["outcome"]) == ("a", "tenant.drop", "ok")
    assert drop["operator"] not in ("", "dba-jane")  # $USER again without --actor
    assert len(_lines(tmp_path)) == 3


def test_refused_drop_and_document_writes(audited: Path, tmp_path: Path) -> None:
    from docex_ops.config.settings import load_settings

    TenantDatabaseManager.reset()
    TenantDatabaseManager(load_settings(audited))
    basket = DocEX(user_context=UserContext(user_id="alice", tenant_id="full")).create_basket("x")
    source = tmp_path / "doc.txt"
    source.write_text("hello")
    doc = basket.add(source)
    TenantDatabaseManager.reset()
    assert _cli(audited, "tenants", "drop", "full", "--yes")[0] == 1
    actions = [(x["action"], x["outcome"], x["target"], x["operator"]) for x in _lines(tmp_path)]
    assert actions[1:] == [("basket.create", "ok", basket.id, "alice"),
                           ("document.add", "ok", doc.id, "alice"),
                           ("tenant.drop", "refused", actions[0][2], actions[-1][3])]
    assert actions[0][:2] == ("tenant.provision", "ok")


def test_tail_filters_and_formats(audited: Path, tmp_path: Path) -> None:
    assert _cli(audited, "tenants", "provision", "a", "b", "c")[0] == 0
    code, out, _ = _cli(audited, "audit", "tail", "--format", "json", "-n", "2")
    assert code == 0
    assert [x["tenant"] for x in json_data(out, "audit tail")["events"]] == ["b", "c"]
    code, out, _ = _cli(audited, "--format", "json", "audit", "tail", "--tenant", "a")
    assert [x["tenant"] for x in json_data(out, "audit tail")["events"]] == ["a"]
    code, out, _ = _cli(audited, "audit", "tail", "--tenant", "b")
    assert code == 0 and "tenant.provision" in out and " a " not in out
    assert '{"trigger":"explicit","revision":"0003_object_paths"}' in out
    assert out.splitlines()[0].split() == ["time", "operator", "tenant", "action", "target",
                                           "outcome", "detail"]
    assert _cli(audited, "audit", "tail", "--tenant", "Bad-Id")[0] == 2
    (tmp_path / "audit.jsonl").write_text("not json\n")
    assert _cli(audited, "audit", "tail")[0] == 1


def test_tail_without_configured_file(config_file: Path) -> None:
    code, _, err = _cli(config_file, "audit", "tail")
    assert code == 2 and "logging.audit_file" in err


def test_passwords_never_logged(tmp_path: Path) -> None:
    audit_trail.configure(tmp_path / "a.jsonl")
    try:
        audit_trail.record("tenant.restore", "acme", "postgresql://u:s3cret@db/x", audit_trail.OK,
                     {"password": "s3cret", "nested": {"api_token": "s3cret"},
                      "url": "postgresql+psycopg2://u:s3cret@h:5432/db", "rows": 3})
    finally:
        audit_trail.configure(None)
    text = (tmp_path / "a.jsonl").read_text()
    assert "s3cret" not in text
    line = json.loads(text)
    assert line["detail"]["rows"] == 3 and line["detail"]["password"] == "<hidden>"
    assert line["target"] == "postgresql://u:<hidden>@db/x"
    with pytest.raises(ValueError, match="outcome"):
        audit_trail.record("x", None, None, "maybe")


def test_audit_file_config_is_validated(tmp_path: Path) -> None:
    settings = settings_from_mapping({"logging": {"audit_file": "audit/trail.jsonl"}},
                                     base_dir=tmp_path)
    assert settings.audit_file == tmp_path / "audit" / "trail.jsonl"
    for bad in (str(tmp_path), 42.5, ""):
        with pytest.raises(ConfigError, match="logging.audit_file"):
            settings_from_mapping({"logging": {"audit_file": bad}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="logging"):
        settings_from_mapping({"logging": "loud"})
