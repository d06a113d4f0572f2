"""One dispatch for per-kind feature code: a registry keyed by database kind.

A feature declares, in one place, which module implements it for each kind
(as Alembic's ``DefaultImpl`` registry does per dialect)::

    ARCHIVERS = KindRegistry[TenantArchiver]("backup archiver", {
        "postgresql": "docex_ops.backup.pg:PgArchiver",
        "sqlite": "docex_ops.backup.sqlite:SqliteArchiver",
    })
    archiver_class = ARCHIVERS.for_kind(backend.kind)

The module is imported on first use, so a command loads only its own kind's
code. A new kind registers one line per feature it supports; asking for a kind
a feature has no implementation for is a clear error, never a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class KindRegistry(Generic[T]):
    def __init__(self, feature: str, implementations: Mapping[str, str]) -> None:
        self.feature = feature
        self._paths = dict(implementations)
        self._loaded: dict[str, T] = {}

    @property
    def kinds(self) -> list[str]:
        return list(self._paths)

    def register(self, kind: str, path: str) -> None:
        """Add (or replace) the implementation of ``kind``: ``"module:attribute"``."""
        self._paths[kind] = path
        self._loaded.pop(kind, None)

    def for_kind(self, kind: str) -> T:
        if kind not in self._loaded:
            path = self._paths.get(kind)
            if path is None:
                raise LookupError(f"{self.feature} is not available for {kind!r} "
                                  f"(available: {', '.join(self._paths) or 'none'})")
            module, _, attribute = path.partition(":")
            found: Any = getattr(import_module(module), attribute)
            self._loaded[kind] = found
        return self._loaded[kind]
