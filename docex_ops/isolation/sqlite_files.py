"""SQLite files: each tenant file is its own, where it should be, and not writable by others."""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from pathlib import Path

from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.results import CheckResult, fail, warn, with_passes

LOCATION = "file_location"
SHARING = "file_sharing"
PERMISSIONS = "file_permissions"
SIDECARS = "sidecars"
SIDECAR_SUFFIXES = ("-wal", "-journal", "-shm")


def expected_realpath(ctx: IsolationContext, path: Path) -> Path:
    """Where the file is when nothing under the storage root is a link."""
    root = ctx.manager.settings.sqlite.storage_root
    return Path(os.path.realpath(root)) / path.relative_to(root)


def check_location(ctx: IsolationContext) -> list[CheckResult]:
    findings = []
    for tenant in ctx.subjects:
        path = Path(ctx.tenants[tenant])
        real, expected = Path(os.path.realpath(path)), expected_realpath(ctx, path)
        if path.is_symlink():
            findings.append(fail(LOCATION, tenant, str(path), f"the tenant file is a symlink to "
                                 f"{real}; replace it with the tenant's own file"))
        elif real != expected:
            findings.append(fail(LOCATION, tenant, str(path), f"resolves to {real} (a linked "
                                 f"directory), not its own tenant directory {expected.parent}"))
        root = Path(os.path.realpath(ctx.manager.settings.sqlite.storage_root))
        if root not in real.parents:
            findings.append(fail(LOCATION, tenant, str(path), f"resolves to {real}, outside the "
                                 f"storage root {root}"))
    return with_passes(LOCATION, ctx.subjects, findings, "-",
                       "a regular file inside its own tenant directory")


def check_sharing(ctx: IsolationContext) -> list[CheckResult]:
    by_inode: dict[tuple[int, int], list[str]] = defaultdict(list)
    links: dict[str, int] = {}
    for tenant, location in ctx.tenants.items():  # all tenants: sharing needs both ends
        try:
            st = os.stat(location)
        except OSError:
            continue
        by_inode[(st.st_dev, st.st_ino)].append(tenant)
        links[tenant] = st.st_nlink
    findings = []
    for tenants in by_inode.values():
        for tenant in (t for t in tenants if t in ctx.subject_set):
            others = [t for t in tenants if t != tenant]
            if others:
                findings.append(fail(SHARING, tenant, ctx.tenants[tenant],
                                     f"same file (inode) as tenant(s) "
                                     f"{', '.join(repr(o) for o in others)}: both tenants read "
                                     "and write one database; give each its own copy"))
            elif links[tenant] > 1:
                findings.append(fail(SHARING, tenant, ctx.tenants[tenant],
                                     f"the file has {links[tenant]} hard links: another path "
                                     "writes the same database; remove the other links"))
    return with_passes(SHARING, ctx.subjects, findings, "-", "the file is the tenant's alone")


def check_permissions(ctx: IsolationContext) -> list[CheckResult]:
    findings = []
    for tenant in ctx.subjects:
        path = Path(ctx.tenants[tenant])
        for what, target in (("file", path), ("directory", path.parent)):
            try:
                mode = os.stat(target).st_mode
            except OSError as exc:
                findings.append(fail(PERMISSIONS, tenant, str(target), f"cannot stat: {exc}"))
                continue
            if mode & (stat.S_IWGRP | stat.S_IWOTH):
                findings.append(fail(PERMISSIONS, tenant, str(target),
                                     f"{what} mode {stat.filemode(mode)} is group/world-writable;"
                                     f" chmod go-w {target}"))
            elif mode & stat.S_IROTH and what == "file":
                findings.append(warn(PERMISSIONS, tenant, str(target),
                                     f"file mode {stat.filemode(mode)} is world-readable; "
                                     f"chmod o-r {target}"))
    return with_passes(PERMISSIONS, ctx.subjects, findings, "-",
                       "neither file nor directory writable by group or others")


def check_sidecars(ctx: IsolationContext) -> list[CheckResult]:
    tenant_inodes = {}
    for tenant, location in ctx.tenants.items():
        try:
            st = os.stat(location)
        except OSError:
            continue
        tenant_inodes[(st.st_dev, st.st_ino)] = tenant
    findings = []
    for tenant in ctx.subjects:
        main = Path(ctx.tenants[tenant])
        owner = os.stat(main).st_uid
        for suffix in SIDECAR_SUFFIXES:
            side = Path(f"{main}{suffix}")
            if not os.path.lexists(side):
                continue
            side_st = os.stat(side) if side.exists() else None
            other = tenant_inodes.get((side_st.st_dev, side_st.st_ino)) if side_st else None
            if side.is_symlink():
                findings.append(fail(SIDECARS, tenant, str(side), f"is a symlink to "
                                     f"{os.path.realpath(side)}; delete it while DocEX is stopped"))
            elif side_st is not None and (other is not None or side_st.st_nlink > 1):
                findings.append(fail(SIDECARS, tenant, str(side), "shares its inode with "
                                     f"{'tenant ' + repr(other) if other else 'another path'}"))
            elif side_st is not None and side_st.st_uid != owner:
                findings.append(fail(SIDECARS, tenant, str(side), f"owned by uid {side_st.st_uid}, "
                                     f"not by the tenant file's owner uid {owner}"))
            elif suffix == "-journal":
                findings.append(warn(SIDECARS, tenant, str(side), "leftover rollback journal: "
                                     "the next connection rolls it back; check for a crash"))
    return with_passes(SIDECARS, ctx.subjects, findings, "-", "no foreign or leftover sidecars")
