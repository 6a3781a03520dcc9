"""Atomic writes: a writer killed at any point leaves the old file or the new one, never a mix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent import fsutil

REPO = Path(__file__).resolve().parents[2]
OLD = b"old " * 250_000
NEW = b"NEW " * 250_000

WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from agent import fsutil
    pause = sys.argv[3] == "pause"

    def hold():
        print("between", flush=True)
        time.sleep(60)

    fsutil.atomic_write(__import__("pathlib").Path(sys.argv[2]), b"NEW " * 250_000,
                        before_replace=hold if pause else None)
    """
)


def start_writer(path: Path, mode: str) -> subprocess.Popen:
    """A child process that atomically writes NEW over path."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(REPO), str(path), mode],
        stdout=subprocess.PIPE, text=True,
    )


def test_killed_between_temp_file_and_rename_keeps_old_file(tmp_path):
    """SIGKILL after the temp file is complete but before the rename: the old file stays."""
    path = tmp_path / "vhost.conf"
    path.write_bytes(OLD)
    child = start_writer(path, "pause")
    assert child.stdout.readline().strip() == "between"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert path.read_bytes() == OLD
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(fsutil.TEMP_PREFIX)]
    assert leftovers, "the temp file should be left behind by the kill"
    assert fsutil.read_tree(tmp_path) == {path: OLD}


@pytest.mark.parametrize("delay_ms", [0, 5, 20, 40, 80])
def test_killed_at_any_moment_leaves_old_or_new(tmp_path, delay_ms):
    """Kill the writer after a varying delay: the file is entirely OLD or entirely NEW."""
    path = tmp_path / "zone"
    path.write_bytes(OLD)
    child = start_writer(path, "run")
    time.sleep(delay_ms / 1000)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert path.read_bytes() in (OLD, NEW)


def test_snapshot_restore_puts_back_files_and_removes_new_folders(tmp_path):
    """Restore rewrites changed files, deletes new ones and prunes folders it created."""
    kept = tmp_path / "a.conf"
    kept.write_bytes(b"a")
    created = tmp_path / "owner" / "b.conf"
    snapshot = fsutil.Snapshot([kept, created])
    fsutil.write_changes({kept: b"changed", created: b"b"}, [])
    snapshot.restore()
    assert kept.read_bytes() == b"a"
    assert not (tmp_path / "owner").exists()


def test_atomic_write_sets_mode(tmp_path):
    """The requested mode is on the file before it gets its name."""
    path = tmp_path / "passwd"
    fsutil.atomic_write(path, b"x", 0o600)
    assert path.stat().st_mode & 0o777 == 0o600
