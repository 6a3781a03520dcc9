"""The agent's own wheel: reproducible, complete (code, templates, pinned requirements), versioned by content."""

from __future__ import annotations

import zipfile

from app.services import wheelhouse


def test_agent_wheel_is_reproducible_and_complete(tmp_path):
    """Same code, same bytes; the templates are inside; the requirements are its Requires-Dist."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = wheelhouse.build_agent_wheel(tmp_path / "a")
    second = wheelhouse.build_agent_wheel(tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    version = wheelhouse.agent_wheel_version()
    assert first.name == f"hostfleet_agent-{version}-py3-none-any.whl"
    assert version.split("+g")[1] == wheelhouse.agent_digest()[:10]
    with zipfile.ZipFile(first) as zf:
        names = set(zf.namelist())
        metadata = zf.read(f"hostfleet_agent-{version}.dist-info/METADATA").decode()
        record = zf.read(f"hostfleet_agent-{version}.dist-info/RECORD").decode()
    assert {"agent/__init__.py", "agent/server.py", "agent/software.py", "agent/templates/vhost.conf.j2"} <= names
    assert not any(n.startswith("agent/tests/") or "__pycache__" in n for n in names)
    for requirement in wheelhouse.requirement_lines():
        assert f"Requires-Dist: {requirement}" in metadata
    assert all(line.count(",") == 2 for line in record.splitlines())


def test_deps_key_follows_python_and_requirements():
    """Another Python version on the node means another set of wheels."""
    assert wheelhouse.deps_key("3.11") != wheelhouse.deps_key("3.12")
    assert wheelhouse.deps_key("3.11") == wheelhouse.deps_key("3.11")
