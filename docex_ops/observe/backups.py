"""Backup freshness per tenant from a backup folder's manifests, cheap enough per scrape.

"Verified" here is what can be proven without reading the archives: the manifest parses
(and, with ``backup.signing_key_file`` configured, its signature checks out), its archive
is a regular file of exactly the recorded size, and it was not written after its
manifest (create writes the archive, then the manifest: an archive newer than its
manifest was replaced since). Re-hashing every archive on every scrape would read the
whole backup folder each minute at 1,000 tenants; the sha256 and restore proof stays
``backup verify``'s job. Parsed manifests are kept by (path, size, mtime), so a
long-lived ``metrics serve`` reads each one once (1,000 manifests: 0.15 s a scrape).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from docex_ops.backup.manifest import (
    MANIFEST_SUFFIX,
    BackupUsageError,
    Manifest,
    read_manifest,
)
from docex_ops.backup.signing import signature_problem
from docex_ops.observe.snapshot import BackupFact

# The archive is renamed into place before its manifest is written; file systems with a
# coarse clock can stamp them a moment apart either way.
MTIME_SLACK_S = 2.0


@dataclass
class BackupScan:
    facts: dict[str, BackupFact]
    problems: list[str]


def utc(text: str) -> datetime:
    """A manifest time (ISO 8601) as an aware UTC datetime; naive ones are UTC."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def scan_backups(folder: Path, tenants: list[str], key: bytes | None) -> BackupScan:
    """One fact per tenant in ``tenants`` (archives only: safety copies are not the
    schedule a DBA watches); unreadable manifests are problems, never an exception."""
    problems: list[str] = []
    if folder.is_symlink() or not folder.is_dir():
        return BackupScan({}, [f"backups: {folder} is not a directory (or is a symlink)"])
    newest: dict[str, datetime] = {}
    verified: dict[str, datetime] = {}
    archives: dict[str, int] = {}
    wanted = set(tenants)
    seen: set[Path] = set()
    for path in sorted(folder.rglob("*" + MANIFEST_SUFFIX)):
        seen.add(path)
        try:
            manifest, finished = _read(path)
        except (BackupUsageError, ValueError, OSError) as exc:
            problems.append(f"backups: {exc}")
            continue
        tenant = manifest.tenant_id
        if tenant not in wanted or manifest.is_safety:
            continue
        archives[tenant] = archives.get(tenant, 0) + 1
        if tenant not in newest or finished > newest[tenant]:
            newest[tenant] = finished
        if _unverified(manifest, path, key) is None and (
                tenant not in verified or finished > verified[tenant]):
            verified[tenant] = finished
    for gone in set(_PARSED) - seen:  # the cache holds only what the folder still has
        del _PARSED[gone]
    facts = {t: BackupFact(t, newest.get(t), verified.get(t), archives.get(t, 0))
             for t in tenants}
    return BackupScan(facts, problems)


# path -> ((size, mtime_ns), manifest, finished): `metrics serve` parses a manifest once,
# and again only when it changes (a manifest is written once, by rename).
_PARSED: dict[Path, tuple[tuple[int, int], Manifest, datetime]] = {}


def _read(path: Path) -> tuple[Manifest, datetime]:
    st = os.stat(path)
    key = (st.st_size, st.st_mtime_ns)
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    manifest = read_manifest(path)
    finished = utc(manifest.finished_at)
    _PARSED[path] = (key, manifest, finished)
    return manifest, finished


def _unverified(manifest: Manifest, path: Path, key: bytes | None) -> str | None:
    """Why the copy does not check out (cheaply), or None when it does."""
    if key is not None:
        problem = signature_problem(manifest, key)
        if problem is not None:
            return problem
    try:
        archive = os.lstat(manifest.archive_path)
        written = os.stat(path).st_mtime
    except OSError:
        return "archive missing"
    if not stat.S_ISREG(archive.st_mode):
        return "archive is not a regular file"
    if archive.st_size != manifest.archive_size:
        return "archive size differs from the manifest's"
    if archive.st_mtime > written + MTIME_SLACK_S:
        return "archive written after its manifest"
    return None
