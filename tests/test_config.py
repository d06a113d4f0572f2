"""Configuration: every bad value fails at load with key, value and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from docex_ops.cli import main
from docex_ops.config.settings import ConfigError, load_settings, settings_from_mapping


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


BAD = [
    ({"database": {"type": "oracle"}}, "database.type", "oracle"),
    ({"database": {"postgres": {"schema_template": "tenant_x"}}},
     "database.postgres.schema_template", "tenant_x"),
    ({"database": {"sqlite": {"path_template": "storage/docex.db"}}},
     "database.sqlite.path_template", "storage/docex.db"),
    ({"database": {"postgres": {"port": "fivefour"}}}, "database.postgres.port", "fivefour"),
    ({"database": {"postgres": {"port": 70000}}}, "database.postgres.port", "70000"),
    ({"database": {"pool_size": -1}}, "database.pool_size", "-1"),
    ({"database": {"max_overflow": -5}}, "database.max_overflow", "-5"),
    ({"database": {"pool_timeout": "soon"}}, "database.pool_timeout", "soon"),
    ({"security": {"multi_tenancy_model": "schema"}}, "security.multi_tenancy_model", "schema"),
    ({"security": {"tenant_database_routing": "yes"}},
     "security.tenant_database_routing", "yes"),
    ({"database": {"postgres": {"sslmode": "always"}}}, "database.postgres.sslmode", "always"),
    ({"database": "postgres"}, "database", "postgres"),
]


@pytest.mark.parametrize(("raw", "key", "value"), BAD)
def test_bad_value_names_key_value_and_allowed(raw: Any, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(raw)
    message = str(info.value)
    assert key in message and value in message and "expected" in message


def test_defaults_are_docex_defaults() -> None:
    s = settings_from_mapping({})
    assert (s.db_type, s.multi_tenancy_model, s.tenant_database_routing) == \
        ("sqlite", "database_level", True)
    assert (s.pool.pool_size, s.pool.max_overflow, s.pool.pool_timeout) == (5, 10, 30)
    assert s.sqlite.storage_root == (Path.cwd() / "storage").resolve()


def test_postgres_alias_and_psycopg2_url() -> None:
    s = settings_from_mapping({"database": {"type": "postgres",
                                            "postgres": {"password": "s3cret", "port": "6543"}}})
    assert s.db_type == "postgresql" and s.postgres.port == 6543
    assert s.postgres.url().drivername == "postgresql+psycopg2"
    assert "s3cret" not in repr(s) and "s3cret" not in s.describe()
    assert "s3cret" not in str(s.postgres.url())


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings(env={}).source == "<embedded default>"
    home_cfg = tmp_path / ".docex" / "config.yaml"
    home_cfg.parent.mkdir()
    home_cfg.write_text(yaml.safe_dump({"database": {"pool_size": 2}}))
    assert load_settings(env={}).pool.pool_size == 2
    env_cfg = _write(tmp_path, {"database": {"pool_size": 3}})
    assert load_settings(env={"DOCEX_CONFIG": str(env_cfg)}).pool.pool_size == 3
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text(yaml.safe_dump({"database": {"pool_size": 4}}))
    assert load_settings(explicit, env={"DOCEX_CONFIG": str(env_cfg)}).pool.pool_size == 4


def test_database_url_overrides_connection(tmp_path: Path) -> None:
    env = {"DOCEX_DATABASE_URL": "postgresql://bob:pw@db.example:6000/docs?sslmode=require"}
    s = load_settings(_write(tmp_path, {"database": {"type": "sqlite"}}), env=env)
    assert (s.db_type, s.postgres.host, s.postgres.port, s.postgres.database, s.postgres.user,
            s.postgres.sslmode) == ("postgresql", "db.example", 6000, "docs", "bob", "require")
    with pytest.raises(ConfigError, match="DOCEX_DATABASE_URL"):
        load_settings(_write(tmp_path, {}), env={"DOCEX_DATABASE_URL": "mysql://x/y"})


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", env={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(_write(tmp_path, "database: [unclosed"), env={})


def test_cli_exits_2_on_bad_config_and_hides_password(tmp_path: Path) -> None:
    path = _write(tmp_path, {"database": {"type": "postgresql",
                                          "postgres": {"password": "hunter2", "port": "x"}}})
    result = CliRunner().invoke(main, ["--config", str(path), "tenants", "list"])
    assert result.exit_code == 2
    assert "database.postgres.port" in result.output
    assert "hunter2" not in result.output


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("5s", 5.0), ("10min", 600.0),
                                          ("1h", 3600.0), ("3", 3.0), (2, 2.0), ("1.5s", 1.5)])
def test_durations_are_written_as_postgresql_writes_them(text: object, seconds: float) -> None:
    from docex_ops.config.settings import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 sec", "10mins", "-1", "s", "", True, -3])
def test_bad_durations_are_refused(text: object) -> None:
    from docex_ops.config.settings import parse_duration

    with pytest.raises(ValueError):
        parse_duration(text)


def test_lock_timeout_comes_from_the_config_and_defaults_to_5s() -> None:
    base = {"database": {"type": "sqlite"}}
    assert settings_from_mapping(base).lock_timeout == 5.0
    raw = {"database": {"type": "sqlite", "lock_timeout": "250ms"}}
    assert settings_from_mapping(raw).lock_timeout == 0.25
    with pytest.raises(ConfigError, match="database.lock_timeout"):
        settings_from_mapping({"database": {"type": "sqlite", "lock_timeout": "soon"}})


def test_allowed_roles_default_to_the_configured_user_who_is_always_allowed() -> None:
    raw = {"database": {"type": "postgresql", "postgres": {"user": "docex_app"}}}
    s = settings_from_mapping(raw)
    assert s.isolation.allowed_roles is None
    assert s.isolation.operator_roles(s.postgres.user) == {"docex_app"}
    listed = settings_from_mapping({**raw, "isolation": {"allowed_roles": ["backup", "dba"]}})
    assert listed.isolation.allowed_roles == ("backup", "dba")
    assert listed.isolation.operator_roles("docex_app") == {"backup", "dba", "docex_app"}


def test_allowed_roles_refuse_each_bad_value_in_one_message_per_value() -> None:
    bad = ["ok_role", "", "PUBLIC", "pg_read_all_data", "docex_t_acme", 7, "x" * 64]
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"isolation": {"allowed_roles": bad}})
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"isolation.allowed_roles[{i}]" for i in range(1, len(bad))]
    assert "not PUBLIC" in lines[1] and "predefined" in lines[2] and "tenant role" in lines[3]
    assert all("expected" in line for line in lines)
    with pytest.raises(ConfigError, match=r"isolation.allowed_roles: invalid value 'postgres'"):
        settings_from_mapping({"isolation": {"allowed_roles": "postgres"}})  # not a list
