"""Backup freshness per tenant from a backup folder's manifests, cheap enough per scrape.

"Verified" here is what can be proven without reading the archives: the manifest parses
(and, with ``backup.signing_key_file`` configured, its signature checks out), its archive
is a regular file of exactly the recorded size, and it was not written after its
manifest (create writes the archive, then the manifest: an archive newer than its
manifest was replaced since). Re-hashing every archive on every scrape would read the
whole backup folder each minute at 1,000 tenants; the sha256 and restore proof stays
``backup verify``'s job. What a scrape needs of each manifest is kept by (path, size,
mtime), so a long-lived ``metrics serve`` reads each one once.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from docex_ops.backup.manifest import MANIFEST_SUFFIX, BackupUsageError, read_manifest
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


@dataclass
class FolderRead:
    """Every archive copy in a backup folder, judged, before it is known which tenants
    exist: the folder can be read while the servers are (observe/collect.py). Unreadable
    manifests are problems, never an exception."""

    copies: list[tuple[_Copy, bool]]  # (copy, it checks out)
    problems: list[str]
    readable: bool = True             # False: no folder there, so no facts at all


def read_folder(folder: Path, key: bytes | None) -> FolderRead:
    problems: list[str] = []
    if folder.is_symlink() or not folder.is_dir():
        return FolderRead([], [f"backups: {folder} is not a directory (or is a symlink)"],
                          readable=False)
    copies = []
    seen: set[str] = set()
    for path in _manifest_paths(folder):
        seen.add(path)
        try:
            copy = _read(path, key)
        except (BackupUsageError, ValueError, OSError) as exc:
            problems.append(f"backups: {exc}")
            continue
        if not copy.is_safety:
            copies.append((copy, _unverified(copy) is None))
    for gone in set(_PARSED) - seen:  # the cache holds only what the folder still has
        del _PARSED[gone]
    return FolderRead(copies, problems)


def facts_for(read: FolderRead, tenants: list[str]) -> BackupScan:
    """One fact per tenant in ``tenants`` (archives only: safety copies are not the
    schedule a DBA watches)."""
    if not read.readable:
        return BackupScan({}, list(read.problems))
    newest: dict[str, datetime] = {}
    verified: dict[str, datetime] = {}
    archives: dict[str, int] = {}
    wanted = set(tenants)
    for copy, checks_out in read.copies:
        tenant = copy.tenant_id
        if tenant not in wanted:
            continue
        archives[tenant] = archives.get(tenant, 0) + 1
        if tenant not in newest or copy.finished > newest[tenant]:
            newest[tenant] = copy.finished
        if checks_out and (tenant not in verified or copy.finished > verified[tenant]):
            verified[tenant] = copy.finished
    facts = {t: BackupFact(t, newest.get(t), verified.get(t), archives.get(t, 0))
             for t in tenants}
    return BackupScan(facts, list(read.problems))


def _manifest_paths(folder: Path) -> list[str]:
    """Every manifest under ``folder``, sorted; symlinked folders are not followed (as
    rglob). Strings, not Paths: at 10,000 manifests Path objects cost more than reading."""
    found = []
    for parent, _, files in os.walk(folder):
        found += [os.path.join(parent, f) for f in files if f.endswith(MANIFEST_SUFFIX)]
    return sorted(found)


@dataclass(frozen=True)
class _Copy:
    """What a scrape needs of one manifest; the table digests are not kept (memory stays
    flat in the number of manifests)."""

    tenant_id: str
    is_safety: bool
    finished: datetime
    archive_path: str
    archive_size: int
    written: float                  # the manifest's mtime
    signature_problem: str | None  # with the key it was read for; None: signed, or no key


# path -> ((size, mtime_ns, key), copy): `metrics serve` parses a manifest once, and again
# only when it (or the signing key) changes; a manifest is written once, by rename.
_PARSED: dict[str, tuple[tuple[int, int, bytes | None], _Copy]] = {}


def _read(path: str, key: bytes | None) -> _Copy:
    st = os.stat(path)
    stamp = (st.st_size, st.st_mtime_ns, key)
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    manifest = read_manifest(Path(path), signed=key is not None)
    copy = _Copy(manifest.tenant_id, manifest.is_safety, utc(manifest.finished_at),
                 str(manifest.archive_path), manifest.archive_size, st.st_mtime,
                 signature_problem(manifest, key) if key is not None else None)
    _PARSED[path] = (stamp, copy)
    return copy


def _unverified(copy: _Copy) -> str | None:
    """Why the copy does not check out (cheaply), or None when it does."""
    if copy.signature_problem is not None:
        return copy.signature_problem
    try:
        archive = os.lstat(copy.archive_path)
    except OSError:
        return "archive missing"
    if not stat.S_ISREG(archive.st_mode):
        return "archive is not a regular file"
    if archive.st_size != copy.archive_size:
        return "archive size differs from the manifest's"
    if archive.st_mtime > copy.written + MTIME_SLACK_S:
        return "archive written after its manifest"
    return None
