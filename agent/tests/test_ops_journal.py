"""A change interrupted by a crash is rolled back at the next start: old files, never a mix."""

import os
from types import SimpleNamespace

import pytest

from agent import fsutil
from agent.ops import apply


@pytest.fixture
def config(tmp_path):
    """A minimal agent config with a root, a state dir and a recording reload command."""
    (tmp_path / "state").mkdir()
    log = tmp_path / "reloads"
    return SimpleNamespace(
        root=tmp_path / "root",
        state_dir=tmp_path / "state",
        reload_commands={"web": ["sh", "-c", f"echo reload >> {log}"]},
        reload_log=log,
    )


def old_and_new(config):
    a, b = config.root / "etc/a.conf", config.root / "etc/sub/b.conf"
    fsutil.atomic_write(a, b"old a\n")
    return {a: b"new a\n", b: b"new b\n"}, {a: b"old a\n"}


def crash_in_child(func) -> int:
    """Run func in a forked child that dies with it (os._exit), as a SIGKILL would leave things."""
    pid = os.fork()
    if pid == 0:
        try:
            func()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("crash_at", ["after_first_file", "before_check", "during_reload"])
def test_crash_mid_change_is_rolled_back(config, crash_at, monkeypatch):
    desired, current = old_and_new(config)
    if crash_at == "after_first_file":
        monkeypatch.setattr(apply.fsutil, "write_changes", _die_after_first_write)
    check = (lambda _w: os._exit(9)) if crash_at == "before_check" else (lambda _w: None)
    if crash_at == "during_reload":
        monkeypatch.setattr(apply, "reload_service", lambda *_: os._exit(9))

    assert crash_in_child(lambda: apply.apply_files(config, desired, current, check, ["web"])) == 9
    assert apply.journal_path(config).exists(), "the crash left the undo journal"
    assert any(p.exists() and p.read_bytes().startswith(b"new") for p in desired), "the change had begun"

    monkeypatch.undo()
    restored = apply.recover_interrupted(config)
    assert sorted(restored) == sorted(str(p) for p in desired)
    assert (config.root / "etc/a.conf").read_bytes() == b"old a\n"
    assert not (config.root / "etc/sub").exists(), "a folder the change created is gone again"
    assert not apply.journal_path(config).exists()
    assert config.reload_log.read_text() == "reload\n", "the service reloads the old files"


def _die_after_first_write(writes, deletes, modes=None):
    path, data = next(iter(writes.items()))
    fsutil.atomic_write(path, data)
    os._exit(9)


def test_completed_change_leaves_no_journal(config):
    desired, current = old_and_new(config)
    result = apply.apply_files(config, desired, current, None, ["web"])
    assert result.changed and not apply.journal_path(config).exists()
    assert apply.recover_interrupted(config) == []
    assert (config.root / "etc/sub/b.conf").read_bytes() == b"new b\n"


def test_refused_change_leaves_no_journal(config):
    desired, current = old_and_new(config)

    def refuse(_written):
        raise apply.CheckFailed("web", "nginx: [emerg] unexpected }")

    with pytest.raises(apply.CheckFailed):
        apply.apply_files(config, desired, current, refuse, ["web"])
    assert not apply.journal_path(config).exists()
    assert (config.root / "etc/a.conf").read_bytes() == b"old a\n"
