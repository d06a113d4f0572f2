"""database.postgres.servers: parsing, inheritance, the directory server, bad values."""

from __future__ import annotations

from typing import Any

import pytest

from docex_ops.backends import make_backend
from docex_ops.backends.postgres import PostgresBackend
from docex_ops.config.settings import ConfigError, load_settings, settings_from_mapping
from docex_ops.topology import make_topology
from docex_ops.topology.several import SeveralServers


def _pg(**postgres: Any) -> dict[str, Any]:
    return {"database": {"type": "postgresql", "postgres": postgres}}


def test_single_block_is_one_server_named_default() -> None:
    s = settings_from_mapping(_pg(host="db1", port=5433))
    assert list(s.server_settings) == ["default"] and s.directory_server == "default"
    assert s.server_settings["default"].host == "db1" and not s.fleet
    assert isinstance(make_backend(s), PostgresBackend)


def test_servers_inherit_the_block_and_the_directory_defaults() -> None:
    s = settings_from_mapping(_pg(user="ops", password="pw", database="docex", servers={
        "east": {"host": "db-east"}, "default": {"host": "db-main", "port": 6432},
        "west": {"host": "db-west", "user": "west"}}))
    servers = s.server_settings
    assert list(servers) == ["east", "default", "west"]
    assert (servers["east"].user, servers["east"].password, servers["east"].port) == \
        ("ops", "pw", 5432)
    assert servers["west"].user == "west" and servers["default"].port == 6432
    assert s.directory_server == "default" and s.postgres.host == "db-main"
    assert s.fleet and isinstance(make_topology(s), SeveralServers)


def test_directory_server_first_listed_or_named() -> None:
    two = {"a": {"host": "h1"}, "b": {"host": "h2"}}
    assert settings_from_mapping(_pg(servers=two)).directory_server == "a"
    named = settings_from_mapping(_pg(servers=two, directory_server="b"))
    assert named.directory_server == "b" and named.postgres.host == "h2"


@pytest.mark.parametrize(("postgres", "fragment"), [
    ({"servers": {"a": {"host": "h"}}, "directory_server": "z"}, "one of the configured"),
    ({"servers": {"Bad Name": {"host": "h"}}}, "invalid server name"),
    ({"servers": {"a": {"hots": "h"}}}, "unknown key(s) hots"),
    ({"servers": {"a": {"port": "x"}}}, "database.postgres.servers.a.port"),
    ({"servers": {"a": {"host": "h"}, "b": {"host": "h"}}}, "are the same database"),
    ({"servers": {}}, "non-empty mapping"),
    ({"directory_server": "b"}, "no database.postgres.servers"),
])
def test_bad_servers_fail_with_the_key(postgres: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match="database.postgres") as info:
        settings_from_mapping(_pg(**postgres))
    assert fragment in str(info.value)


def test_database_url_cannot_stand_for_several_servers(tmp_path: Any) -> None:
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_pg(servers={"a": {"host": "h1"}, "b": {"host": "h2"}})))
    with pytest.raises(ConfigError, match="DOCEX_DATABASE_URL"):
        load_settings(path, env={"DOCEX_DATABASE_URL": "postgresql://u@h3/db"})
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(_pg(servers={"a": {"host": "h1"}})))
    s = load_settings(one, env={"DOCEX_DATABASE_URL": "postgresql://u@h3/db"})
    assert s.server_settings == {"a": s.postgres} and s.postgres.host == "h3"


def test_interleave_by_server_round_robins_and_keeps_order() -> None:
    from docex_ops.topology.placement import interleave_by_server

    items = ["a1", "a2", "a3", "b1", "c1", "c2"]
    servers = {i: item[0] for i, item in enumerate(items)}
    assert interleave_by_server(items, servers) == ["a1", "b1", "c1", "a2", "c2", "a3"]
