"""The keys docex-ops owns, checked for typos, and where each value in a file stands.

A key docex-ops does not know inside a section it owns is an error with a "did you
mean" suggestion; DocEX's own keys in those sections (``echo``, ...) and the
sections that belong to DocEX alone (``app``, ``storage``, ``multi_tenancy``, ...)
are left alone. A top-level key one letter off a section docex-ops owns
(``databse``) is a typo too: it would otherwise be silently ignored.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Mapping
from typing import Any

from docex_ops.config.values import ConfigError

# Per owned section: docex-ops' keys, and DocEX's own keys accepted beside them.
OWNED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "database": (("type", "postgres", "sqlite", "pool_size", "max_overflow", "pool_timeout",
                  "pool_recycle", "max_tenant_engines", "idle_timeout",
                  "max_total_connections", "lock_timeout"), ("echo",)),
    "database.postgres": (("host", "port", "database", "user", "password", "sslmode",
                           "schema_template", "control_schema", "servers",
                           "directory_server", "pooler", "direct", "pooler_admin"), ("schema",)),
    "database.postgres.direct": (("host", "port"), ()),
    "database.postgres.pooler_admin": (("host", "port", "user", "password", "database"), ()),
    "database.sqlite": (("path", "path_template", "storage_root"), ()),
    "backup": (("signing_key_file",), ()),
    "isolation": (("allowed_roles",), ()),
}
from docex_ops.config import citus as _citus  # noqa: E402  (its keys in database.postgres)

OWNED["database.postgres"] = (OWNED["database.postgres"][0] + _citus.KEYS,
                              OWNED["database.postgres"][1])
# Top-level sections of DocEX's own configuration: never taken for a typo.
DOCEX_SECTIONS = ("security", "multi_tenancy", "app", "storage", "logging", "llm", "mcp",
                  "processors", "transport", "vector", "embedding", "cache")


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(choices)}"


def check_keys(raw: Mapping[str, Any]) -> None:
    """ConfigError for the first unknown key in a section docex-ops owns."""
    owned_top = tuple(name for name in OWNED if "." not in name)
    for key in raw:
        if str(key) in owned_top or str(key) in DOCEX_SECTIONS:
            continue
        close = difflib.get_close_matches(str(key), owned_top, n=1, cutoff=0.8)
        if close:
            raise ConfigError(f"{key}: unknown top-level section; did you mean {close[0]!r}?")
    for section, (ours, docex) in OWNED.items():
        value = _lookup(raw, section)
        if not isinstance(value, Mapping):
            continue  # absent, or refused with its type by the value checks
        for key in value:
            if str(key) not in ours + docex:
                raise ConfigError(f"{section}.{key}: unknown key" + _suggest(str(key), ours))


def _lookup(raw: Mapping[str, Any], dotted: str) -> Any:
    value: Any = raw
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def key_lines(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line of that key in a YAML text (for messages)."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                dotted = f"{prefix}{key_node.value}"
                lines.setdefault(dotted, key_node.start_mark.line + 1)
                walk(value_node, dotted + ".")

    with contextlib.suppress(yaml.YAMLError):  # the loader reports it with its position
        walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    return lines


_KEY_RE = re.compile(r"([A-Za-z_][\w.-]*): ")


def with_line(message: str, source: str, lines: Mapping[str, int]) -> str:
    """``file:line: message`` when the message starts with a key the file holds."""
    if message.startswith(source):
        return message
    match = _KEY_RE.match(message)
    key = match.group(1) if match else None
    while key and key not in lines:  # a value inside a key: the nearest key shown
        key = key.rpartition(".")[0]
    return f"{source}:{lines[key]}: {message}" if key else f"{source}: {message}"
