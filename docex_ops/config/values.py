"""Reading one configuration value: the type and range checks every section shares.

Each helper takes the section mapping and the full dotted key, so that every
refusal names the key, the value and what is allowed (``_bad``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docex_ops.config.settings import PostgresSettings


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


def _bad(key: str, value: object, allowed: str) -> str:
    return f"{key}: invalid value {value!r}; expected {allowed}"


def _section(parent: Mapping[str, Any], name: str, key: str | None = None) -> Mapping[str, Any]:
    value = parent.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(_bad(key or name, value, "a mapping"))
    return value


def _get(section: Mapping[str, Any], key: str, default: Any) -> Any:
    value = section.get(key.rsplit(".", 1)[-1])
    return default if value is None else value


def _str(section: Mapping[str, Any], key: str, default: str) -> str:
    value = _get(section, key, default)
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ConfigError(_bad(key, value, "a non-empty string"))
    return str(value)


def _opt_str(section: Mapping[str, Any], key: str) -> str | None:
    value = _get(section, key, None)
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        shown = "<hidden>" if key.endswith("password") else value
        raise ConfigError(_bad(key, shown, "a string"))
    return str(value)


def _int(section: Mapping[str, Any], key: str, default: int, low: int | None = None,
         high: int | None = None) -> int:
    value = _get(section, key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ConfigError(_bad(key, value, "an integer" + _range(low, high)))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(_bad(key, value, "an integer" + _range(low, high)))
    return value


def _opt_int(section: Mapping[str, Any], key: str, low: int) -> int | None:
    if _get(section, key, None) is None:
        return None
    return _int(section, key, low, low=low)


def _number(section: Mapping[str, Any], key: str, default: float, low: float) -> float:
    value = _get(section, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ConfigError(_bad(key, value, f"a number >= {low:g}"))
    return float(value)


_NUMBER_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")
# Units as PostgreSQL writes them; ``m`` for minutes too, as earlier docex-ops options took.
_TERM_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|min|s|m|h|d)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0,
                   "d": 86400.0}


def parse_duration(text: object) -> float:
    """Seconds in a duration written as PostgreSQL writes them (``500ms``, ``5s``,
    ``10min``, ``1h``, ``1d``, ``1h30min``; a bare number is seconds). ValueError says
    what is allowed. The one duration grammar of every option and config key."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"{text!r} is negative")
        return float(text)
    value = str(text)
    bare = _NUMBER_RE.fullmatch(value)
    if bare is not None:
        return float(bare.group(1))
    total, pos = 0.0, 0
    while pos < len(value.rstrip()) or pos == 0:
        term = _TERM_RE.match(value, pos)
        if term is None:
            raise ValueError(f"{text!r} is not a duration; write e.g. 500ms, 5s, 10min, 1h "
                             "(a bare number is seconds)")
        total += float(term.group(1)) * _DURATION_UNITS[term.group(2)]
        pos = term.end()
    return total


def _duration(section: Mapping[str, Any], key: str, default: float) -> float:
    value = _get(section, key, default)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(_bad(key, value, "a duration such as 500ms, 5s, 10min")) from exc


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    return ""


def _bool(section: Mapping[str, Any], key: str, default: bool) -> bool:
    value = _get(section, key, default)
    if not isinstance(value, bool):
        raise ConfigError(_bad(key, value, "true or false"))
    return value


def _choice(section: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _get(section, key, default)
    if value not in allowed:
        raise ConfigError(_bad(key, value, "one of " + ", ".join(allowed)))
    return str(value)


def _opt_choice(section: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = _get(section, key, None)
    if value is None:
        return None
    if value not in allowed:
        raise ConfigError(_bad(key, value, "one of " + ", ".join(allowed)))
    return str(value)


def _template(section: Mapping[str, Any], key: str, default: str) -> str:
    value = _str(section, key, default)
    if value.count("{tenant_id}") != 1:
        raise ConfigError(_bad(key, value, "a string containing {tenant_id} exactly once"))
    try:
        value.format(tenant_id="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(_bad(key, value, "no placeholder other than {tenant_id}")) from exc
    return value


def _schema_template(section: Mapping[str, Any], key: str, default: str) -> str:
    """A schema template whose schemas are plain identifiers PostgreSQL does not reserve:
    refused here, naming the template, not at the first provision naming a tenant."""
    from docex_ops.tenancy import TenantIdError, check_schema_name

    value = _template(section, key, default)
    try:
        check_schema_name(value.format(tenant_id="a"))
    except TenantIdError as exc:
        raise ConfigError(_bad(key, value, "a template of plain lower-case schema names "
                                           "([a-z_][a-z0-9_]*) not starting with pg_, "
                                           "e.g. tenant_{tenant_id}")) from exc
    return value


def _check_control_schema(postgres: PostgresSettings) -> None:
    """docex-ops' own schema must be a plain name that can never be a tenant's."""
    from docex_ops.tenancy import tenant_id_pattern

    name = postgres.control_schema
    key = "database.postgres.control_schema"
    if not name.isidentifier() or not name.isascii() or name != name.lower() or len(name) > 63:
        raise ConfigError(_bad(key, name, "a lower-case identifier of at most 63 characters"))
    if name.startswith("pg_") or name in ("public", "information_schema"):
        raise ConfigError(_bad(key, name, "a name that is not reserved by PostgreSQL"))
    if tenant_id_pattern(postgres.schema_template).fullmatch(name):
        raise ConfigError(_bad(key, name, "a name that does not match schema_template "
                                          f"{postgres.schema_template!r}"))


def _audit_file(section: Mapping[str, Any], base: Path) -> Path | None:
    value = _opt_str(section, "logging.audit_file")
    if value is None:
        return None
    if value.strip() == "":
        raise ConfigError(_bad("logging.audit_file", value, "a file path"))
    path = _resolve(base, value)
    if path.is_dir():
        raise ConfigError(_bad("logging.audit_file", value,
                               "a file path, not a directory (e.g. audit/docex-ops.jsonl)"))
    return path


def _template_root(path_template: str) -> str:
    """The directories of a path template before the one that holds {tenant_id}."""
    head = path_template.split("{tenant_id}", 1)[0]
    root = head.rsplit("/", 1)[0] if "/" in head else "."
    return root or "/"


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
