"""Pytest plugin for the lab: the `lab` marker and the `lab` / `lab_nodes` session fixtures."""

from __future__ import annotations

import os

import pytest

from tests.lab.lab import Lab, LabError, Node, build_cache, preflight

KEEP_ENV = "HOSTFLEET_LAB_KEEP"
NODES_ENV = "HOSTFLEET_LAB_NODES"
LAB_FIXTURES = {"lab", "lab_nodes", "lab_sysv_node"}


def pytest_configure(config):
    """Register the `lab` marker."""
    config.addinivalue_line(
        "markers", "lab: needs the lab of real Debian nodes (root, systemd-nspawn, overlayfs, netns)")


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses a lab fixture with `lab`, so `-m lab` / `-m 'not lab'` select it."""
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


def pytest_collection_finish(session):
    """Build the lab's cache before the first test, so no test's timeout covers a cold build."""
    if getattr(session.config, "_hostfleet_lab_built", False) or session.config.option.collectonly:
        return
    session.config._hostfleet_lab_built = True
    if not any(item.get_closest_marker("lab") for item in session.items):
        return
    if preflight() is not None:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    timings = build_cache()
    if reporter and timings["total_seconds"] > 1:
        parts = [f"{what} {timings[key]:.1f} s" if timings[key] is not None else f"{what} cached"
                 for what, key in (("base rootfs", "base_seconds"), ("repository", "repo_seconds"))]
        reporter.write_line(f"lab: built the cache in {timings['total_seconds']} s ({', '.join(parts)})")


class _LabSession:
    """The lab as one test session sees it: started on demand, torn down if this session started it."""

    def __init__(self) -> None:
        self.lab = Lab()
        self.started_here = False
        self.skip_reason: str | None = None
        self.checked = False

    def ensure(self, n: int) -> list[Node]:
        if not self.checked:
            self.checked = True
            self.skip_reason = preflight()
        if self.skip_reason:
            pytest.skip(f"lab unavailable: {self.skip_reason}")
        was_up = self.lab.is_up()
        booted = [nd for nd in self.lab.nodes if nd.init == "systemd"]
        if not (was_up and len(booted) >= n):
            try:
                self.lab.up(n)
            except LabError as exc:
                pytest.fail(f"lab failed to start: {exc}")
            if not was_up:
                self.started_here = True
        return [nd for nd in self.lab.nodes if nd.init == "systemd"][:n]

    def sysv_node(self) -> Node:
        if not self.checked:
            self.checked = True
            self.skip_reason = preflight()
        if self.skip_reason:
            pytest.skip(f"lab unavailable: {self.skip_reason}")
        self.lab.load()
        was_up = self.lab.infra_up()
        try:
            node = self.lab.up_sysv(fresh=True)
        except LabError as exc:
            pytest.fail(f"the lab's node without systemd failed to start: {exc}")
        if not was_up:
            self.started_here = True
        return node

    def close(self) -> None:
        if self.started_here and os.environ.get(KEEP_ENV, "") in ("", "0"):
            self.lab.down()


@pytest.fixture(scope="session")
def _lab_session():
    session = _LabSession()
    yield session
    session.close()


@pytest.fixture(scope="session")
def lab_nodes(_lab_session):
    """Factory: lab_nodes(n) -> the first n running nodes (a running lab is reused and extended)."""
    return _lab_session.ensure


@pytest.fixture(scope="session")
def lab_sysv_node(_lab_session):
    """A fresh lab node WITHOUT systemd (init scripts, `hf-sysv200` at 198.18.0.210); removed at the end."""
    node = _lab_session.sysv_node()
    yield node
    if os.environ.get(KEEP_ENV, "") in ("", "0"):
        _lab_session.lab.remove_node(node.name)


@pytest.fixture(scope="session")
def lab(_lab_session) -> Lab:
    """The running lab (at least $HOSTFLEET_LAB_NODES nodes, default 2): .nodes, .node(name), .repo_line."""
    _lab_session.ensure(int(os.environ.get(NODES_ENV, "2")))
    return _lab_session.lab
