"""The JSON envelope every command writes, checked against its schema in docs/json/."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "json"


def schema_path(command: str) -> Path:
    return SCHEMAS / f"{command.replace(' ', '-')}.schema.json"


@functools.cache
def _validator(command: str) -> Draft202012Validator:
    schema = json.loads(schema_path(command).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def envelope(stdout: str, command: str | None = None) -> dict[str, Any]:
    """The one envelope on stdout, valid against its command's schema (and naming
    ``command`` when given); AssertionError naming every drift otherwise."""
    try:
        document = json.loads(stdout)
    except ValueError:
        raise AssertionError(f"stdout is not one JSON document: {stdout[:500]!r}") from None
    assert isinstance(document, dict) and "command" in document, document
    if command is not None:
        assert document["command"] == command, document["command"]
    errors = sorted(_validator(document["command"]).iter_errors(document), key=str)
    assert not errors, f"{document['command']}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])
    return document


def json_data(stdout: str, command: str | None = None) -> Any:
    """The envelope's ``data`` (after checking the envelope against its schema)."""
    return envelope(stdout, command)["data"]
