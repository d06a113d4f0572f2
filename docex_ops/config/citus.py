"""``database.postgres.topology: citus`` and ``database.postgres.nodes``: a Citus cluster.

The configured server (``database.postgres``) is the Citus coordinator: every tenant is
reached through it, and each tenant schema is a distributed schema Citus places on one
worker node. ``nodes`` optionally names the workers (``name: host:port``) so commands
show and accept a name instead of ``host:port``. Several ``servers`` and a Citus topology
are two different answers to "more than one server", so the two are refused together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from docex_ops.config.values import ConfigError, _bad

PLAIN, CITUS = "plain", "citus"
TOPOLOGIES = (PLAIN, CITUS)
KEYS = ("topology", "nodes")  # in database.postgres (config/keys.py)
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ENDPOINT_RE = re.compile(r"(?P<host>[^\s:]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})")


@dataclass(frozen=True)
class CitusSettings:
    # Worker name -> "host:port", in file order (empty: workers shown as host:port).
    nodes: tuple[tuple[str, str], ...] = ()

    def node_name(self, host: str, port: int) -> str:
        """The configured name of the worker at ``host:port``, else ``host:port``."""
        endpoint = f"{host}:{port}"
        return next((name for name, where in self.nodes if where == endpoint), endpoint)

    def names_a_node(self, text: str) -> bool:
        """Whether ``text`` can name a worker at all (a configured name, or host:port),
        checked before anything asks the cluster which workers it has."""
        return (any(text == name for name, _ in self.nodes)
                or _ENDPOINT_RE.fullmatch(text) is not None)


def parse_citus(pg_raw: Mapping[str, Any], several_servers: bool) -> CitusSettings | None:
    """The Citus settings (None: a plain PostgreSQL topology)."""
    topology = pg_raw.get("topology") or PLAIN
    if topology not in TOPOLOGIES:
        raise ConfigError(_bad("database.postgres.topology", topology,
                               "one of " + ", ".join(TOPOLOGIES)))
    raw_nodes = pg_raw.get("nodes")
    if topology == PLAIN:
        if raw_nodes is not None:
            raise ConfigError("database.postgres.nodes: only with database.postgres.topology: "
                              "citus (it names the Citus worker nodes)")
        return None
    if several_servers:
        raise ConfigError("database.postgres.topology: citus cannot be combined with "
                          "database.postgres.servers; configure the coordinator as the one "
                          "server (Citus places the tenants on its workers)")
    return CitusSettings(_nodes(raw_nodes))


def _nodes(raw: object) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError(_bad("database.postgres.nodes", raw,
                               "a mapping of node name to host:port"))
    nodes: list[tuple[str, str]] = []
    for name, where in raw.items():
        key = f"database.postgres.nodes.{name}"
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ConfigError(f"database.postgres.nodes: invalid node name {name!r}; expected "
                              "1-32 characters of a-z, 0-9, _ and -, starting with a letter")
        match = _ENDPOINT_RE.fullmatch(str(where)) if isinstance(where, str) else None
        if match is None or not 1 <= int(match["port"]) <= 65535:
            raise ConfigError(_bad(key, where, "host:port, e.g. 10.0.0.5:5432"))
        if any(where == seen for _, seen in nodes):
            raise ConfigError(f"{key}: {where} is named twice; name each worker once")
        nodes.append((name, where))
    return tuple(nodes)
