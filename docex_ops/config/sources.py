"""Where the configuration comes from: the file lookup and ``$DOCEX_DATABASE_URL``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docex_ops.config.values import ConfigError, _bad

if TYPE_CHECKING:
    from docex_ops.config.settings import Settings


def read_raw(path: str | os.PathLike[str] | None,
              env: Mapping[str, str]) -> tuple[Mapping[str, Any], str]:
    if path is not None:
        chosen, key = Path(path), "--config"
    elif env.get("DOCEX_CONFIG"):
        chosen, key = Path(env["DOCEX_CONFIG"]), "$DOCEX_CONFIG"
    else:
        chosen, key = Path.home() / ".docex" / "config.yaml", ""
        if not chosen.exists():
            return {}, "<embedded default>"
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{key or 'config'}: cannot read {chosen}: {exc.strerror}") from exc
    import yaml  # only when there is a file to read

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{chosen}:{mark.line + 1}:{mark.column + 1}" if mark else str(chosen)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from exc
    return (data or {}), str(chosen)


def file_text(source: str) -> str | None:
    """The text of the config file ``source`` names (None: no file), for line numbers."""
    try:
        return Path(source).read_text(encoding="utf-8") if not source.startswith("<") else None
    except OSError:
        return None


def _url_source(settings: Settings) -> str:
    """Where the settings came from once the URL replaced the connection block."""
    if settings.source.startswith("<"):
        return "$DOCEX_DATABASE_URL"
    return f"{settings.source} and $DOCEX_DATABASE_URL"


def _masked(url_text: str) -> str:
    """The URL as it may be shown: any password replaced (it never reaches output)."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url_text)


def apply_url(settings: Settings, url_text: str) -> Settings:
    """``$DOCEX_DATABASE_URL`` replaces the connection block, keeping the templates."""
    from sqlalchemy.engine import make_url  # the URL grammar SQLAlchemy itself accepts
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise ConfigError(_bad("$DOCEX_DATABASE_URL", _masked(url_text),
                               "a URL such as postgresql://user@host:5432/db")) from exc
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres") and len(settings.servers) > 1:
        raise ConfigError("$DOCEX_DATABASE_URL names one server but database.postgres.servers "
                          "lists several; unset the variable or edit the servers in the file")
    if backend in ("postgresql", "postgres"):
        pg = replace(
            settings.postgres,
            host=url.host or settings.postgres.host,
            port=url.port or settings.postgres.port,
            database=url.database or settings.postgres.database,
            user=url.username or settings.postgres.user,
            password=url.password if url.password is not None else settings.postgres.password,
            sslmode=str(url.query.get("sslmode", settings.postgres.sslmode or "")) or None,
        )
        servers = ((settings.directory_server, pg),) if settings.servers else ()
        return replace(settings, db_type="postgresql", postgres=pg, servers=servers,
                       source=_url_source(settings))
    if backend == "sqlite" and url.database:
        path = Path(url.database).resolve()
        sq = replace(settings.sqlite, path=path)
        return replace(settings, db_type="sqlite", sqlite=sq, source=_url_source(settings))
    raise ConfigError(_bad("$DOCEX_DATABASE_URL", f"{backend}://...",
                           "a postgresql:// or sqlite:/// URL"))


