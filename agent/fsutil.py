"""Crash-safe file writes and snapshots of the files an operation is about to change."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

# Temp files start with this so that readers of a managed folder can skip leftovers of a crash.
TEMP_PREFIX = ".hf-tmp-"


def atomic_write(
    path: Path, data: bytes, mode: int = 0o644, before_replace: Callable[[], None] | None = None,
    owner: tuple[int, int] | None = None,
) -> None:
    """Replace path with data: temp file in the same folder (of `owner`, a UID and GID, when given), fsync,
    rename, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in folder durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Delete path if present, durably."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def read_or_none(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def read_tree(folder: Path, suffix: str = "") -> dict[Path, bytes]:
    """Every regular file under folder (ending in suffix), skipping crash leftovers."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    found = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            if name.startswith(TEMP_PREFIX) or not name.endswith(suffix):
                continue
            path = Path(dirpath, name)
            found[path] = path.read_bytes()
    return found


class Snapshot:
    """The previous content of a set of files (None = did not exist) and folders to prune."""

    def __init__(self, paths: Iterable[Path]):
        self.files: dict[Path, bytes | None] = {Path(p): read_or_none(p) for p in paths}
        # Each file's permission bits, put back with it: a 0600 file (password hashes, a key) restored with
        # atomic_write's default would be readable by every account.
        self.modes: dict[Path, int] = {}
        for path, data in self.files.items():
            if data is not None:
                try:
                    self.modes[path] = os.stat(path).st_mode & 0o7777
                except FileNotFoundError:
                    pass
        self.missing_dirs: set[Path] = set()
        for path in self.files:
            parent = path.parent
            while not parent.exists():
                self.missing_dirs.add(parent)
                parent = parent.parent

    def save(self, journal: Path, services: Iterable[str]) -> None:
        """Write the snapshot as an undo journal, so a crash mid-change can be rolled back at start."""
        body = {
            "files": {str(p): None if d is None else base64.b64encode(d).decode() for p, d in self.files.items()},
            "missing_dirs": sorted(str(d) for d in self.missing_dirs),
            "modes": {str(p): m for p, m in self.modes.items()},
            "services": list(services),
        }
        atomic_write(journal, json.dumps(body).encode(), 0o600)

    @classmethod
    def load(cls, journal: Path) -> tuple[Snapshot, list[str]]:
        """The snapshot and the services of an undo journal left by an interrupted change."""
        body = json.loads(Path(journal).read_bytes())
        snapshot = cls([])
        snapshot.files = {Path(p): None if d is None else base64.b64decode(d) for p, d in body["files"].items()}
        snapshot.missing_dirs = {Path(d) for d in body["missing_dirs"]}
        snapshot.modes = {Path(p): m for p, m in body.get("modes", {}).items()}
        return snapshot, body["services"]

    def restore(self) -> None:
        """Put every file back as it was and remove folders that did not exist before."""
        for path, data in self.files.items():
            if data is None:
                remove(path)
            elif read_or_none(path) != data:
                # A journal written before modes were kept says nothing: the old default then (services
                # running as their own users read most of these files).
                atomic_write(path, data, self.modes.get(path, 0o644))
        for folder in sorted(self.missing_dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass


def write_changes(
    writes: dict[Path, bytes], deletes: Iterable[Path], modes: dict[Path, int] | None = None
) -> None:
    """Apply a computed change set: atomic writes first, then deletions (pruning empty folders)."""
    modes = modes or {}
    for path, data in writes.items():
        atomic_write(path, data, modes.get(path, 0o644))
    for path in deletes:
        remove(path)
        try:
            # A per-owner folder whose last file went is removed with it.
            Path(path).parent.rmdir()
        except OSError:
            pass
