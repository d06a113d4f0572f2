"""One tenant, one real file: SQLite tenant paths resolved without following links.

Someone who can write to the storage root can plant a symbolic link (tenant b's
directory pointing at a's) or a hard link (b's file being a's inode). Every
command then would read, back up, overwrite or delete a's data as b's. So,
before any open, a tenant's path is walked from the storage root with
``lstat``: no component may be a link, the file must be a regular file with
one link. After SQLite opened it, the connection is checked to hold that very
file: SQLite resolves links itself and reports the real path in
``PRAGMA database_list``, and the inode must still be the one checked, so a
link planted between the check and the open is caught before any statement.
Only the storage root itself (the operator's configuration) may be a link.
"""

from __future__ import annotations

import glob
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from docex_ops.tenancy import sqlite_path_for, tenant_id_pattern

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class TenantFileError(RuntimeError):
    """A tenant's directory or file is a link, has other hard links, or is another
    tenant's: refused before it is opened (exit 1)."""


@dataclass(frozen=True)
class CheckedFile:
    """A path walked without following links; ``identity`` is (st_dev, st_ino) of the
    file when it existed at the check (None: not created yet)."""

    path: Path
    identity: tuple[int, int] | None
    who: str  # "tenant 'b'" or "the control file", for messages


class TenantPaths:
    """Where each tenant's file is under one storage root, checked to be its own."""

    def __init__(self, template: str, storage_root: Path) -> None:
        self.root = Path(os.path.realpath(storage_root))
        # The template as it reads below the real root, so real paths can be matched.
        given = Path(os.path.abspath(storage_root))
        written = Path(os.path.normpath(os.path.abspath(template)))
        if given != self.root and written.is_relative_to(given):
            written = self.root / written.relative_to(given)
        self.template = str(written)
        self._pattern = tenant_id_pattern(self.template)

    def lexical(self, tenant_id: str) -> Path:
        """The tenant's path as the template names it (nothing checked on disk)."""
        return sqlite_path_for(tenant_id, self.template, self.root)

    def check(self, tenant_id: str) -> CheckedFile:
        """The tenant's file, refused (TenantFileError) if a link makes it another's."""
        return self.check_path(self.lexical(tenant_id), f"tenant {tenant_id!r}")

    def check_path(self, path: Path, who: str) -> CheckedFile:
        """``path`` (under the root) walked with lstat: no link, one hard link at most."""
        current, full = str(self.root), str(path)
        for part in path.relative_to(self.root).parts:
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                return CheckedFile(path, None, who)
            if stat.S_ISLNK(st.st_mode):
                raise TenantFileError(self._link_message(who, Path(current)))
            if current != full and not stat.S_ISDIR(st.st_mode):
                raise TenantFileError(f"{who}: {current} is not a directory; refusing to "
                                      f"open {path}")
        if not stat.S_ISREG(st.st_mode):
            raise TenantFileError(f"{who}: {path} is not a regular file; refusing to open it")
        if st.st_nlink > 1:
            raise TenantFileError(self._hard_link_message(who, path, st))
        return CheckedFile(path, (st.st_dev, st.st_ino), who)

    def verify_open(self, conn: sqlite3.Connection, checked: CheckedFile) -> None:
        """Raise (the caller closes ``conn``) unless SQLite holds the checked file."""
        row = conn.execute("PRAGMA database_list").fetchone()
        opened = str(row[2]) if row else ""
        if opened != str(checked.path):
            raise TenantFileError(f"{checked.who}: {checked.path} turned into a link to "
                                  f"{opened or 'another file'} while it was being opened; "
                                  "refused, nothing was read or written")
        try:
            st = os.lstat(checked.path)
        except FileNotFoundError as exc:
            raise TenantFileError(f"{checked.who}: {checked.path} disappeared while it was "
                                  "being opened; refused") from exc
        identity = (st.st_dev, st.st_ino)
        if checked.identity is not None and identity != checked.identity:
            raise TenantFileError(f"{checked.who}: {checked.path} was replaced by another "
                                  "file while it was being opened; refused, nothing was read "
                                  "or written")
        if st.st_nlink > 1:
            raise TenantFileError(self._hard_link_message(checked.who, checked.path, st))

    @contextmanager
    def parent_dir(self, path: Path, create: bool = False, mode: int = 0o750
                   ) -> Iterator[int]:
        """An fd of ``path``'s directory, reached from the root without following links
        (created when missing and ``create``): what is done through it happens there."""
        fd = os.open(self.root, DIR_FLAGS)
        try:
            for part in path.parent.relative_to(self.root).parts:
                if create:
                    with suppress(FileExistsError):  # made by us or a concurrent creator
                        os.mkdir(part, mode, dir_fd=fd)
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except (NotADirectoryError, OSError) as exc:
                    if isinstance(exc, FileNotFoundError):
                        raise
                    # ELOOP / ENOTDIR: a link planted since the check
                    raise TenantFileError(f"{path.parent} is not a plain directory under "
                                          f"{self.root}: {exc.strerror}; refused") from exc
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    # -- naming the other tenant ---------------------------------------------------------

    def owner_of(self, real: Path) -> str | None:
        """The tenant whose file (or directory) ``real`` is, if any."""
        for candidate in (real, real / Path(self.template).name):
            match = self._pattern.fullmatch(str(candidate))
            if match:
                return match["tenant_id"]
        return None

    def owner_of_inode(self, st: os.stat_result) -> str | None:
        """The tenant whose file is the inode ``st`` (only looked for when it has other
        hard links: one link and outside the tenants' places means no tenant's)."""
        if st.st_nlink < 2:
            return None
        for other in self._tenant_files():
            if _same_inode(other, st):
                return self._pattern.fullmatch(other)["tenant_id"]  # type: ignore[index]
        return None

    def _link_message(self, who: str, link: Path) -> str:
        real = Path(os.path.realpath(link))
        owner = self.owner_of(real)
        whose = f", which is tenant {owner!r}'s" if owner else ""
        return (f"{who}: {link} is a symbolic link to {real}{whose}; refusing to use it "
                "(each tenant needs its own directory and file: remove the link)")

    def _hard_link_message(self, who: str, path: Path, st: os.stat_result) -> str:
        others = [other for other in self._tenant_files()
                  if other != str(path) and _same_inode(other, st)]
        owners = [f"tenant {self._pattern.fullmatch(o)['tenant_id']!r}'s {o}"  # type: ignore[index]
                  for o in others]
        same = f": the same file as {', '.join(owners)}" if owners else ""
        return (f"{who}: {path} has {st.st_nlink} hard links{same}; refusing to use it "
                "(each tenant needs its own file: remove the other links)")

    def _tenant_files(self) -> Iterator[str]:
        pattern = glob.escape(self.template).replace(glob.escape("{tenant_id}"), "*")
        for text in glob.glob(pattern):
            if self._pattern.fullmatch(text):
                yield text


def _same_inode(path: str, st: os.stat_result) -> bool:
    try:
        other = os.lstat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
