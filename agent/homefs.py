"""Customer trees, changed as root without resolving a path the customer can change.

Everything below `<root>/home/<owner>` is the customer's: their PHP can put a symbolic link
anywhere in it, or swap a folder for one while the agent is working. So the agent never hands
such a path to a call that resolves it. A walk starts from an open handle of the home (opened
with O_NOFOLLOW: the home must be a real folder owned by the account) and opens one component
at a time relative to the previous handle with O_NOFOLLOW | O_DIRECTORY; a link, planted before
or swapped in during the walk, makes the open fail and the operation is refused, naming the
field that asked for the path. Folders are made with mkdirat, files with O_CREAT | O_EXCL |
O_NOFOLLOW relative to a handle, and owners and modes are set with fchown/fchmod on the opened
handle, never by path. An existing component must belong to the account: a folder of root's or
another account's inside a home is refused rather than written into.

Homes are private: `<owner>:www-data 0710`. The owner has the home; the web server (nginx, the
only process running as www-data) may enter it but not list it; every other account, and so
every other customer's PHP (each pool runs as its owner), cannot enter it. The site folders the
agent makes are `<owner>:www-data 2750` (setgid, so files added later are group www-data too)
and its files `<owner>:www-data 0640`: nginx reads them through the group. The private temporary
folder of the owner's PHP pool (`~/tmp`) is `<owner>:<owner> 0700`.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agent import fsutil
from agent.failpoints import failpoint
from agent.validation import ValidationError

log = logging.getLogger("hostfleet.agent.homefs")

WEB_GROUP = "www-data"
HOME_MODE = 0o710
SITE_DIR_MODE = 0o2750
SITE_FILE_MODE = 0o640
PRIVATE_DIR_MODE = 0o700
# The PHP pool's uploads, sessions and temporary files, inside the home (open_basedir allows it).
TMP_DIR = "tmp"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass(frozen=True)
class Account:
    """A hosting account as the root prefix's passwd and group files hold it."""

    name: str
    uid: int
    gid: int
    # The web server's group (www-data), or the account's own group on a node without one.
    web_gid: int


def _ids(path: Path, name: str) -> tuple[int, int] | None:
    """Fields 3 and 4 (ids) of the line naming `name` in a passwd- or group-style file."""
    data = fsutil.read_or_none(path) or b""
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) > 3 and parts[0] == name and parts[2].isdigit():
            return int(parts[2]), int(parts[3]) if parts[3].isdigit() else -1
    return None


def account(config, owner: str, field: str = "owner") -> Account:
    """The owner's ids from the root prefix; a hosting account (UID 1000 or more) is required."""
    root = Path(config.root)
    ids = _ids(root / "etc/passwd", owner)
    if ids is None or ids[0] < 1000 or ids[0] == 65534:
        raise ValidationError(field, f"{owner!r} is not a hosting account on this node")
    web = _ids(root / "etc/group", WEB_GROUP)
    return Account(owner, ids[0], ids[1], web[0] if web else ids[1])


def _as_root() -> bool:
    """Ownership is set and checked only when the agent runs as root (a node; not a developer's run)."""
    return os.geteuid() == 0


def _why(exc: OSError, parent_fd: int | None = None, name: str = "") -> str:
    """Why a component could not be opened as a folder (a link fails with ELOOP or, the flags asking
    for a folder, ENOTDIR: lstat tells which it was)."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and parent_fd is not None:
        try:
            if stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
                return "is a symbolic link; links are not followed"
        except OSError:
            pass
    if exc.errno == errno.ELOOP:
        return "is a symbolic link; links are not followed"
    if exc.errno == errno.ENOTDIR:
        return "is not a folder"
    if exc.errno == errno.ENOENT:
        return "does not exist"
    return f"cannot be opened: {exc.strerror}"


def _refuse(field: str, shown: str, exc: OSError, parent_fd: int | None = None, name: str = "") -> ValidationError:
    """The error for a component that cannot be walked into."""
    return ValidationError(field, f"{shown} {_why(exc, parent_fd, name)}")


def _open_dir(parent_fd: int, name: str, field: str, shown: str) -> int:
    """Open a folder relative to parent_fd without following a link."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        raise _refuse(field, shown, exc, parent_fd, name) from None


def _require_owner(fd: int, acct: Account, field: str, shown: str) -> None:
    """Refuse a folder that is not the account's (when ownership means anything: as root)."""
    if _as_root() and os.fstat(fd).st_uid != acct.uid:
        raise ValidationError(field, f"{shown} does not belong to {acct.name}")


class Home:
    """An open handle of an account's home, checked to be a real folder the account owns.

    With create, a missing home is made (`<owner>:www-data 0710`): the folder holding homes is
    root's, so nothing the customer controls is resolved to reach it.
    """

    def __init__(self, config, acct: Account, field: str, create: bool = False):
        self.acct = acct
        self.field = field
        self.shown = f"/home/{acct.name}"
        homes = Path(config.root) / "home"
        if create:
            homes.mkdir(parents=True, exist_ok=True)
        parent = os.open(homes, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if create:
                try:
                    os.mkdir(acct.name, PRIVATE_DIR_MODE, dir_fd=parent)
                    made = True
                except FileExistsError:
                    made = False
            self.fd = _open_dir(parent, acct.name, field, self.shown)
        finally:
            os.close(parent)
        if create and made:
            self._set(self.fd, acct.uid, acct.web_gid, HOME_MODE)
        try:
            _require_owner(self.fd, acct, field, self.shown)
            if create:
                self.ensure_private()
        except BaseException:
            os.close(self.fd)
            raise

    def __enter__(self) -> Home:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    @staticmethod
    def _set(fd: int, uid: int, gid: int, mode: int) -> None:
        if _as_root():
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)

    def make_private(self) -> None:
        """Give the home the private shape: the owner's, entered by the web server only."""
        self._set(self.fd, self.acct.uid, self.acct.web_gid, HOME_MODE)

    def ensure_private(self) -> bool:
        """Give a home every other account can enter (Debian's 0755, as homes made before they were private
        are) the private shape; True when it was changed. A home already closed to others is kept as its
        owner set it."""
        mode = stat.S_IMODE(os.fstat(self.fd).st_mode)
        if not _as_root() or not mode & 0o007:
            return False
        self.make_private()
        log.warning("%s was open to every account (mode %04o): made private (%s:%s %04o)", self.shown, mode,
                    self.acct.name, WEB_GROUP, HOME_MODE)
        return True

    def walk(self, relative: str, create_mode: int | None = None, group: int | None = None) -> tuple[int, list[str]]:
        """Open the folder at relative (validated: plain components) below the home, component by
        component, never following a link; with create_mode, missing folders are made with that mode,
        owned by the account and `group` (default: its own). Returns the open handle of the last
        folder (the caller closes it) and the components made, outermost first."""
        fd = os.dup(self.fd)
        made: list[str] = []
        shown = self.shown
        try:
            for part in [p for p in relative.split("/") if p]:
                shown = f"{shown}/{part}"
                if part in (".", ".."):
                    raise ValidationError(self.field, f"{shown}: '{part}' is not allowed")
                created = False
                if create_mode is not None:
                    try:
                        os.mkdir(part, PRIVATE_DIR_MODE, dir_fd=fd)
                        created = True
                        failpoint("homefs.after_mkdir", parent_fd=fd, entry=part)
                    except FileExistsError:
                        pass
                child = _open_dir(fd, part, self.field, shown)
                os.close(fd)
                fd = child
                if created:
                    # Ours unless it was swapped for one of the account's own folders meanwhile.
                    if _as_root() and os.fstat(fd).st_uid not in (0, self.acct.uid):
                        raise ValidationError(self.field, f"{shown} changed while it was being made")
                    self._set(fd, self.acct.uid, self.acct.gid if group is None else group, create_mode)
                    made.append(shown)
                else:
                    _require_owner(fd, self.acct, self.field, shown)
            return fd, made
        except BaseException:
            os.close(fd)
            raise

    def check(self, relative: str) -> None:
        """Refuse the path if any component that exists is a link, not a folder, or not the account's
        (what walk would refuse), without making anything."""
        fd = os.dup(self.fd)
        shown = self.shown
        try:
            for part in [p for p in relative.split("/") if p]:
                shown = f"{shown}/{part}"
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    return
                except OSError as exc:
                    raise _refuse(self.field, shown, exc, fd, part) from None
                os.close(fd)
                fd = child
                _require_owner(fd, self.acct, self.field, shown)
        finally:
            os.close(fd)

    def create_file(self, dir_fd: int, name: str, data: bytes, mode: int, group: int | None = None) -> bool:
        """Write a new file in an open folder of this home, owned by the account; False (nothing written)
        when the name exists, whatever it is (a link or a hard link included)."""
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            self._set(fh.fileno(), self.acct.uid, self.acct.gid if group is None else group, mode)
        return True


def make_homes_private(config) -> list[str]:
    """At the agent's start: every hosting account's home other accounts can enter (made before homes were
    private, or opened up since) gets the private shape; the homes changed. One that cannot be opened as
    the account's own folder (missing, a link, another's) is left alone."""
    changed = []
    data = fsutil.read_or_none(Path(config.root) / "etc/passwd") or b""
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) < 7 or parts[5] != f"/home/{parts[0]}":
            continue
        try:
            acct = account(config, parts[0])
            with Home(config, acct, "name") as home:
                if home.ensure_private():
                    changed.append(home.shown)
        except (ValidationError, OSError):
            continue
    return changed


# What agents before private sites made: every folder of a document root and its index page the owner's,
# in the owner's group, open to every account.
OLD_SITE_DIR_MODE = 0o755
OLD_SITE_FILE_MODE = 0o644
INDEX_PAGE = "index.html"


def make_site_private(config, owner: str, docroot: str) -> list[str]:
    """At the agent's start: the folders of a document root and its index page that still have the shape an
    older agent made them in (`<owner>:<owner>` 0755 and 0644) get today's (`<owner>:www-data` 2750 and
    0640); the paths changed. Walked from a handle of the home without following a link, each changed on
    its own handle (fchown/fchmod), so a link anywhere on the way ends the walk and nothing it points to is
    touched. Anything with another shape (the customer's own choice, a hard link, another account's) is
    kept. ValidationError (docroot) when the path cannot be walked."""
    if not _as_root():
        return []
    acct = account(config, owner)
    changed: list[str] = []
    with Home(config, acct, "docroot") as home:
        fd, shown = os.dup(home.fd), home.shown
        try:
            for part in [p for p in docroot.split("/") if p]:
                shown = f"{shown}/{part}"
                child = _open_dir(fd, part, "docroot", shown)
                os.close(fd)
                fd = child
                if _has_old_shape(os.fstat(fd), acct, OLD_SITE_DIR_MODE):
                    home._set(fd, acct.uid, acct.web_gid, SITE_DIR_MODE)
                    changed.append(shown)
            try:
                page = os.open(INDEX_PAGE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                               dir_fd=fd)
            except OSError:
                return changed
            try:
                st = os.fstat(page)
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and _has_old_shape(st, acct, OLD_SITE_FILE_MODE):
                    home._set(page, acct.uid, acct.web_gid, SITE_FILE_MODE)
                    changed.append(f"{shown}/{INDEX_PAGE}")
            finally:
                os.close(page)
        finally:
            os.close(fd)
    return changed


def _has_old_shape(st: os.stat_result, acct: Account, mode: int) -> bool:
    return st.st_uid == acct.uid and st.st_gid == acct.gid and stat.S_IMODE(st.st_mode) == mode


def ensure_private_dir(config, owner: str, relative: str = TMP_DIR, field: str = "owner") -> bool:
    """The owner's private folder (`~/tmp` by default), made `<owner>:<owner> 0700` when missing;
    True when it was made. An existing one is kept as it is (it is the customer's)."""
    acct = account(config, owner)
    with Home(config, acct, field, create=True) as home:
        fd, made = home.walk(relative, PRIVATE_DIR_MODE)
        os.close(fd)
    return bool(made)


def remove_tree(base: Path, relative: str) -> bool:
    """Delete the folder at relative below base and everything in it, never following a link: each
    component is opened with O_NOFOLLOW from a handle of base, and the folder is emptied through that
    handle level by level (_descend: however deep the tree, a bounded number of handles and no
    recursion; shutil.rmtree recurses once per level and a customer's home can be deeper than Python
    allows). base itself is the agent's (the folder holding homes or maildirs). False when absent;
    OSError when a component is a link or not a folder (a link where the folder was expected is left
    as it is)."""
    parts = [p for p in relative.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise OSError(f"{relative!r} is not a plain path below {base}")
    try:
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise OSError(f"{base}/{relative}: {part} {_why(exc, fd, part)}") from None
            os.close(fd)
            fd = child
        try:
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(f"{base}/{relative} is not a folder")
        try:
            top = os.open(parts[-1], _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise OSError(f"{base}/{relative} {_why(exc, fd, parts[-1])}") from None
        try:
            _descend(top, _empty_files, _remove_gone_child, lost=_refuse_lost)
        finally:
            os.close(top)
        os.rmdir(parts[-1], dir_fd=fd)
        os.fsync(fd)
        return True
    finally:
        os.close(fd)


def _empty_files(fd: int) -> list[str]:
    """remove_tree's visit: unlink every entry of the open folder but its folders; their names."""
    folders = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
            else:
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
    return folders


def _remove_gone_child(parent_fd: int, name: str, exc: OSError | None) -> None:
    """remove_tree's leave: the emptied folder is removed; one that could not be opened as a folder
    (swapped for a link or a file since it was listed) is unlinked as itself, never followed."""
    if exc is None:
        os.rmdir(name, dir_fd=parent_fd)
    elif exc.errno in (errno.ELOOP, errno.ENOTDIR):
        os.unlink(name, dir_fd=parent_fd)
    elif exc.errno != errno.ENOENT:
        raise exc


def _refuse_lost(shown: str) -> None:
    raise OSError(f"{shown} moved while it was being removed")


# Handles a walk keeps open at most, for the deepest levels: a level above them is reached again
# through its child's "..", checked to be the same folder (device and inode) it left.
OPEN_LEVELS = 64


class _Level:
    __slots__ = ("fd", "dev", "ino", "name", "pending")

    def __init__(self, fd: int, name: str, pending: list[str]):
        st = os.fstat(fd)
        self.fd: int | None = fd
        self.dev, self.ino = st.st_dev, st.st_ino
        self.name = name
        self.pending = pending


def _descend(top_fd: int, visit, leave=None, lost=None) -> None:
    """Depth-first over top_fd and every folder below it, without recursion and never following a link:
    visit(fd) gets each folder's open handle (top's first) and returns the names of the subfolders to
    enter; each is opened with O_NOFOLLOW | O_DIRECTORY relative to its parent's handle. When a
    subfolder is done (or could not be opened: exc), leave(parent_fd, name, exc). At most OPEN_LEVELS
    handles are held however deep the tree: a parent whose handle was closed is opened again through
    its child's "..", and must be the same folder; one that is not (moved meanwhile) calls lost(shown)
    (which may raise) and its remaining subfolders are not entered."""
    stack = [_Level(os.dup(top_fd), ".", [])]
    try:
        stack[0].pending = list(reversed(visit(stack[0].fd)))
        while stack:
            level = stack[-1]
            if level.pending and level.fd is not None:
                name = level.pending.pop()
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=level.fd)
                except OSError as exc:  # gone, or swapped for a link since it was listed
                    if leave is not None:
                        leave(level.fd, name, exc)
                    continue
                try:
                    stack.append(_Level(child, name, []))
                except BaseException:
                    os.close(child)
                    raise
                stack[-1].pending = list(reversed(visit(child)))
                # Keep the top's handle and the deepest ones; the levels in between are reopened by "..".
                index = len(stack) - 1 - OPEN_LEVELS
                if index >= 1 and stack[index].fd is not None:
                    os.close(stack[index].fd)
                    stack[index].fd = None
                continue
            stack.pop()
            if not stack:
                os.close(level.fd)
                break
            parent = stack[-1]
            if parent.fd is None and level.fd is not None:
                parent.fd = _same_folder(os.open, "..", level.fd, parent)
            if parent.fd is None:
                # The child was moved elsewhere: reach the parent again by name from the nearest open level.
                parent.fd = _rewalk(stack)
            if level.fd is not None:
                os.close(level.fd)
            if parent.fd is None:
                parent.pending = []
                if lost is not None:
                    lost("/".join(lv.name for lv in stack[1:]) or ".")
                continue
            if leave is not None:
                leave(parent.fd, level.name, None)
    finally:
        for level in stack:
            if level.fd is not None:
                os.close(level.fd)


def _same_folder(opener, name: str, dir_fd: int, level: _Level) -> int | None:
    """A handle of name (relative to dir_fd, never following a link) when it is the folder `level` left
    (same device and inode); None when it is gone or is another folder now."""
    try:
        fd = opener(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (level.dev, level.ino):
        os.close(fd)
        return None
    return fd


def _rewalk(stack: list[_Level]) -> int | None:
    """A handle of the last level, opened again by name from the nearest level still open, each level on
    the way checked to be the folder it was; None when one is not (it was moved): that level and those
    below it are given up (nothing more is entered there)."""
    last = len(stack) - 1
    start = max(i for i in range(last) if stack[i].fd is not None)
    fd, owned = stack[start].fd, False
    for index in range(start + 1, last + 1):
        child = _same_folder(os.open, stack[index].name, fd, stack[index])
        if owned:
            os.close(fd)
        if child is None:
            for level in stack[index:]:
                level.pending = []
            return None
        fd, owned = child, True
    return fd


def tree_bytes(path: Path) -> int:
    """Bytes of disk the files and folders under path take (like `du -s`: blocks, hard-linked files
    counted in each place, links counted as themselves). Walked level by level (_descend: however deep,
    a bounded number of handles), each folder opened with O_NOFOLLOW relative to its parent, so a
    folder swapped for a link during the walk is skipped, never followed. A missing path, or one that
    is not a real folder, is 0."""
    try:
        top = os.open(path, _DIR_FLAGS)
    except OSError:
        return 0
    total = 0

    def visit(fd: int) -> list[str]:
        nonlocal total
        folders = []
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        folders.append(entry.name)
        except OSError:
            pass
        return folders

    try:
        _descend(top, visit)
    finally:
        os.close(top)
    return total
