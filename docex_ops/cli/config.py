"""``docex-ops config check``: the effective settings and where each came from."""

from __future__ import annotations

import os

import click

from docex_ops.cli.common import emit, format_option, state


@click.group("config")
def config() -> None:
    """Check the configuration docex-ops would use."""


@config.command("check")
@format_option
def check_cmd(fmt: str | None) -> None:
    """Load and validate the configuration, then print every effective setting (passwords
    masked) with where it came from: file:line, $DOCEX_DATABASE_URL or the default.
    Exits 2, naming the file, line and key, when the configuration cannot be used.

    Example: docex-ops --config deploy/docex.yaml config check
    """
    from docex_ops.config.keys import key_lines
    from docex_ops.config.report import effective_settings
    from docex_ops.config.sources import file_text

    settings = state().settings
    text = file_text(settings.source.split(" and ")[0])
    rows = effective_settings(settings, key_lines(text) if text else {},
                              bool(os.environ.get("DOCEX_DATABASE_URL")))
    emit([{"key": r.key, "value": r.value, "source": r.source} for r in rows], fmt,
         payload={"source": settings.source, "settings": rows})
