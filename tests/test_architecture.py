"""The layers of docs/architecture.md, checked on the source: what would regress first
when a feature is added in a hurry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import docex_ops

PACKAGE = Path(docex_ops.__file__).parent
FEATURES = ("backup", "split", "move", "isolation", "pools", "tenants", "cleanup", "cli",
            "observe", "doctor", "lint", "migrate")
# SQL as this code base writes it (upper-case keywords), not prose that starts "Create".
SQL = re.compile(r"^\s*(SELECT\s.*\bFROM\b|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|"
                 r"(CREATE|ALTER|DROP)\s+(TABLE|SCHEMA|INDEX|ROLE|DATABASE)|GRANT\s|REVOKE\s)",
                 re.DOTALL)
MAX_LINES = 450  # "no module over ~400 lines without a reason"


def _modules(under: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_isinstance_on_a_backend_class_outside_backends() -> None:
    pattern = re.compile(r"isinstance\([^)]*\b\w*Backend\b")
    found = [f"{p.relative_to(PACKAGE)}:{n}" for p in _modules()
             if "backends" not in p.relative_to(PACKAGE).parts
             for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_backends_import_no_feature_package() -> None:
    found = [f"{p.relative_to(PACKAGE)}: {name}" for p in _modules(PACKAGE / "backends")
             for name in _imported(p)
             if any(name == f"docex_ops.{f}" or name.startswith(f"docex_ops.{f}.")
                    for f in FEATURES)]
    assert found == []


def test_the_cli_builds_no_sql() -> None:
    found = [f"{p.relative_to(PACKAGE)}:{node.lineno}" for p in _modules(PACKAGE / "cli")
             for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and SQL.match(node.value)]
    assert found == []


def test_no_module_is_much_over_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
