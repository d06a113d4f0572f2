"""The options and the read that ``metrics`` and ``report`` share: one fleet snapshot,
with or without a backup folder's freshness."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from docex_ops.cli.options import Duration

if TYPE_CHECKING:
    from docex_ops.manager.tenant_manager import TenantDatabaseManager
    from docex_ops.observe.snapshot import FleetSnapshot


def real_dir(_ctx: click.Context, param: click.Parameter, value: Path | None
              ) -> Path | None:
    """An existing directory that is not a symlink (a link could point the scrape, or
    the written file, anywhere)."""
    if value is not None and (value.is_symlink() or not value.is_dir()):
        raise click.BadParameter(f"{value} is not a directory (or is a symlink)",
                                 param_hint=f"--{param.name}")
    return value


def snapshot_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--backups", type=click.Path(path_type=Path), default=None,
                  callback=real_dir, metavar="DIR",
                  help="A backup folder: each tenant's backup age from its manifests, and "
                       "the tenants with no backup that checks out.")
    @click.option("--stale-after", type=Duration(minimum=1), default=86400.0,
                  metavar="DURATION", help="A backup older than this is stale (default 1d; "
                                           "30min, 12h, 2d).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)
    return wrapper


def read_snapshot(manager: TenantDatabaseManager, backups: Path | None,
                  stale_after: float) -> FleetSnapshot:
    from docex_ops.observe.collect import collect

    return collect(manager, backups, stale_after)
