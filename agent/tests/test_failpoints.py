"""The agent's failpoints: off unless the environment names them; a kill at one is undone at restart."""

import os
import time
from types import SimpleNamespace

import pytest

from agent import failpoints, fsutil
from agent.ops import apply


def test_off_unless_named(monkeypatch):
    """Unset, or naming another point: nothing happens; an unknown name is a programming error."""
    monkeypatch.delenv(failpoints.ENV, raising=False)
    failpoints.failpoint("apply.after_write")
    monkeypatch.setenv(failpoints.ENV, "other.point=kill")
    failpoints.failpoint("apply.after_write")
    with pytest.raises(KeyError):
        failpoints.failpoint("no.such.point")


def test_sleep_pauses(monkeypatch):
    """`sleep:<s>` pauses at the point (what a test kills the agent in)."""
    monkeypatch.setenv(failpoints.ENV, "apply.after_write=sleep:0.2")
    started = time.monotonic()
    failpoints.failpoint("apply.after_write")
    assert time.monotonic() - started >= 0.2


def test_kill_after_write_is_rolled_back_at_the_next_start(tmp_path, monkeypatch):
    """SIGKILLed with the new files written: the journal puts the old ones back."""
    (tmp_path / "state").mkdir()
    config = SimpleNamespace(root=tmp_path / "root", state_dir=tmp_path / "state", reload_commands={})
    path = config.root / "etc/a.conf"
    fsutil.atomic_write(path, b"old\n")
    monkeypatch.setenv(failpoints.ENV, "apply.after_write=kill")
    pid = os.fork()
    if pid == 0:
        try:
            apply.apply_files(config, {path: b"new\n"}, {path: b"old\n"}, None, [])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == -9
    assert path.read_bytes() == b"new\n" and apply.journal_path(config).exists()
    assert apply.recover_interrupted(config) == [str(path)]
    assert path.read_bytes() == b"old\n" and not apply.journal_path(config).exists()
