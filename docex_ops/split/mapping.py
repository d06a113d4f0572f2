"""The mapping file: which tenant each basket (by id or by name) goes to.

YAML::

    default_tenant: misc          # optional: every basket not listed
    baskets:
      invoices: acme              # basket name or id -> tenant id
      bas_0f3a...: globex

(``baskets`` may also be a list of ``{basket: ..., tenant: ...}``.)
CSV: a header ``basket,tenant``; a row whose basket is ``*`` sets the default.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from docex_ops.tenancy import TenantIdError, validate_tenant_id


class MappingError(ValueError):
    """The mapping file cannot be read; the message names the file and the entry."""


@dataclass(frozen=True)
class BasketMapping:
    entries: dict[str, str] = field(default_factory=dict)  # basket id or name -> tenant id
    default_tenant: str | None = None
    source: str = "<mapping>"


def load_mapping(path: Path) -> BasketMapping:
    if not path.is_file():
        raise MappingError(f"mapping file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        return _from_csv(text, str(path))
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping file {path} is not valid YAML: {exc}") from exc
    return _from_yaml(raw, str(path))


def _from_yaml(raw: Any, source: str) -> BasketMapping:
    if not isinstance(raw, dict):
        raise MappingError(f"{source}: expected a mapping with 'baskets' "
                           "(and optionally 'default_tenant')")
    unknown = set(raw) - {"baskets", "default_tenant"}
    if unknown:
        raise MappingError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                           "allowed: baskets, default_tenant")
    default = raw.get("default_tenant")
    if default is not None and not isinstance(default, str):
        raise MappingError(f"{source}: default_tenant must be a string")
    baskets = raw.get("baskets") or {}
    pairs: list[tuple[Any, Any]]
    if isinstance(baskets, dict):
        pairs = list(baskets.items())
    elif isinstance(baskets, list):
        pairs = []
        for i, item in enumerate(baskets):
            if not isinstance(item, dict) or set(item) != {"basket", "tenant"}:
                raise MappingError(f"{source}: baskets[{i}] must be {{basket: ..., tenant: ...}}")
            pairs.append((item["basket"], item["tenant"]))
    else:
        raise MappingError(f"{source}: 'baskets' must be a mapping or a list")
    return _mapping(pairs, default, source)


def _from_csv(text: str, source: str) -> BasketMapping:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or {"basket", "tenant"} - set(reader.fieldnames):
        raise MappingError(f"{source}: the CSV header must have the columns basket,tenant")
    default: str | None = None
    pairs = []
    for line, row in enumerate(reader, start=2):
        basket, tenant = (row.get("basket") or "").strip(), (row.get("tenant") or "").strip()
        if basket == "*":
            default = tenant
        else:
            pairs.append((basket, tenant) if basket else (None, f"line {line}"))
    return _mapping(pairs, default, source)


def _mapping(pairs: list[tuple[Any, Any]], default: str | None, source: str) -> BasketMapping:
    if default:
        _check_tenant(default, source, "default_tenant")
    return BasketMapping(_entries(pairs, source), default, source)


def _check_tenant(tenant: str, source: str, where: str) -> None:
    """A hostile or malformed id is the mapping's error (exit 2), named with its entry,
    before any source is opened or tenant made."""
    try:
        validate_tenant_id(tenant)
    except TenantIdError as exc:
        raise MappingError(f"{source}: {where}: {exc}; fix the mapping") from None


def _entries(pairs: list[tuple[Any, Any]], source: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for basket, tenant in pairs:
        if not isinstance(basket, str) or not basket:
            raise MappingError(f"{source}: a basket key is empty or not a string ({tenant!r})")
        if not isinstance(tenant, str):
            raise MappingError(f"{source}: basket {basket!r}: tenant must be a string")
        _check_tenant(tenant, source, f"basket {basket!r}")
        if basket in entries and entries[basket] != tenant:
            raise MappingError(f"{source}: basket {basket!r} is mapped twice "
                               f"({entries[basket]!r} and {tenant!r})")
        entries[basket] = tenant
    return entries
