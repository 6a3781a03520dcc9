"""The agent's software synchronization: apt progress parsing, states, restarts, and its signed routes."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from agent.config import initialize
from agent.software import Busy, SoftwareManager, packages_for, parse_status_line, templates_digest
from app.extensions import db
from app.services import nodes as node_service

FAKE_APT = """#!{python}
import os, sys, time
args = sys.argv[1:]
db = {db!r}
if "update" in args:
    print("Hit:1 http://198.18.0.1:8018 ./ InRelease")
    sys.exit(0)
fd = int([a for a in args if a.startswith("APT::Status-Fd=")][0].split("=")[1])
packages = args[args.index("install") + 1:]
status = os.fdopen(fd, "w")
for i, package in enumerate(packages):
    status.write(f"pmstatus:{{package}}:{{i * 100 / len(packages)}}:Installing {{package}} (amd64)\\n")
    status.flush()
    time.sleep({delay})
    if package == {fail!r}:
        status.write(f"pmerror:{{package}}:{{i * 100 / len(packages)}}:post-installation script failed\\n")
        print("E: Sub-process /usr/bin/dpkg returned an error code (1)")
        sys.exit(100)
    open(os.path.join(db, package), "w").close()
    status.write(f"pmstatus:{{package}}:{{(i + 1) * 100 / len(packages)}}:Installed {{package}} (amd64)\\n")
    status.flush()
print("Setting up done")
"""


@pytest.fixture
def apt(tmp_path):
    """A fake apt-get (and dpkg) that writes APT::Status-Fd lines and records installs in a folder."""

    def make(fail: str = "", delay: float = 0.01):
        db_dir = tmp_path / "dpkg-db"
        db_dir.mkdir(exist_ok=True)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / "apt-get"
        script.write_text(FAKE_APT.format(python=sys.executable, db=str(db_dir), fail=fail, delay=delay))
        script.chmod(0o755)
        (bin_dir / "dpkg").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "dpkg").chmod(0o755)
        return script, (lambda packages: {p for p in packages if (db_dir / p).exists()})

    return make


@pytest.fixture
def config(tmp_path):
    """An agent config with a private root."""
    from agent.config import AgentConfig

    result = initialize(tmp_path / "agent.json", root=tmp_path / "root", state_dir=tmp_path / "state",
                        secret_file=tmp_path / "secret", listen_host="127.0.0.1", listen_port=18443,
                        hostnames=["localhost"])
    return AgentConfig.load(result["config_path"])


def manager(config, apt_get, installed) -> SoftwareManager:
    """A manager that really runs (the fake) apt although the root is private."""
    return SoftwareManager(config, apt_get=str(apt_get), systemctl="/bin/true", installed=installed,
                           manage_packages=True)


@pytest.mark.parametrize("line, parsed", [
    ("pmstatus:nginx:33.3333:Installing nginx (amd64)", ("pmstatus", "nginx", 33.3333, "Installing nginx (amd64)")),
    ("pmstatus:libc6:amd64:50:Configuring libc6:amd64", ("pmstatus", "libc6", 50.0, "Configuring libc6:amd64")),
    ("dlstatus:1:12.5:Retrieving file 1 of 8", ("dlstatus", "1", 12.5, "Retrieving file 1 of 8")),
    ("pmerror:bind9:80:subprocess failed", ("pmerror", "bind9", 80.0, "subprocess failed")),
    ("Reading package lists...", None),
    ("", None),
])
def test_apt_status_lines(line, parsed):
    """APT::Status-Fd lines, with and without an architecture qualifier."""
    assert parse_status_line(line) == parsed


def test_install_reports_each_package_then_done(config, apt):
    """Every package of the roles plus the base ones, progress to 100 %, roles assigned, state file 0600."""
    apt_get, installed = apt()
    software = manager(config, apt_get, installed)
    first = software.start(["web", "dns"])
    assert first["state"] == "running" and set(first["packages"].values()) == {"pending"}
    software.wait(30)
    status = software.status(with_templates=True)
    assert status["state"] == "done" and status["percent"] == 100.0 and status["error"] is None
    assert status["packages"] == {p: "installed" for p in packages_for(["web", "dns"])}
    assert list(status["packages"])[:2] == ["nftables", "cron"]
    assert status["templates"] == templates_digest()
    assert config.roles == ["web", "dns"]
    assert stat.S_IMODE(os.stat(Path(config.state_dir) / "software.json").st_mode) == 0o600
    assert any("Setting up done" in line for line in status["log"])


def test_installing_the_dns_role_makes_bind_authoritative_only_before_it_starts(config, apt):
    """Once apt has installed bind9 (Debian's named.conf is there), its stock options are replaced by an
    authoritative-only server's before the services start; a node without bind gets none."""
    apt_get, installed = apt()
    etc = Path(config.root) / "etc/bind"
    etc.mkdir(parents=True)
    (Path(config.root) / "var/cache/bind").mkdir(parents=True)  # as the bind9 package leaves them
    (etc / "named.conf").write_text(f'include "{etc}/named.conf.options";\ninclude "{etc}/named.conf.local";\n')
    (etc / "named.conf.options").write_text('options {\n\tdirectory "/var/cache/bind";\n};\n')
    software = manager(config, apt_get, installed)
    software.start(["dns"])
    software.wait(30)
    status = software.status()
    assert status["state"] == "done", status.get("error")
    options = (etc / "named.conf.options").read_text()
    assert "recursion no;" in options and "allow-transfer { none; };" in options and "version none;" in options
    assert any("authoritative-only" in line for line in status["log"])


def test_failed_package_is_named(config, apt):
    """apt fails on one package: state failed, the package failed, the error quotes apt."""
    apt_get, installed = apt(fail="bind9")
    software = manager(config, apt_get, installed)
    software.start(["dns"])
    software.wait(30)
    status = software.status()
    assert status["state"] == "failed" and status["packages"]["bind9"] == "failed"
    assert "apt-get install failed (exit 100)" in status["error"]


def test_one_installation_at_a_time(config, apt):
    """Same roles while running: the same run; other roles: Busy (the master asks again later)."""
    apt_get, installed = apt(delay=0.3)
    software = manager(config, apt_get, installed)
    started = software.start(["web"])
    assert software.start(["web"])["started_at"] == started["started_at"]
    with pytest.raises(Busy):
        software.start(["mail"])
    software.wait(30)
    assert software.status()["state"] == "done"


def test_a_restart_mid_install_is_reported_and_roles_kept(config, apt):
    """The agent restarted while apt ran: the next start says so; the roles assigned last still apply."""
    path = Path(config.state_dir) / "software.json"
    path.write_text(json.dumps({"state": "running", "roles": ["mail"], "packages": {}, "log": []}))
    apt_get, installed = apt()
    software = manager(config, apt_get, installed)
    assert software.status()["state"] == "failed" and "interrupted" in software.status()["error"]
    assert config.roles == ["mail"]


def test_private_root_never_touches_the_hosts_packages(config):
    """An agent whose root is not / (tests, the demo) reports `skipped` and runs no apt."""
    software = SoftwareManager(config, apt_get="/nonexistent/apt-get", installed=lambda p: set())
    software.start(["web"])
    software.wait(10)
    status = software.status()
    assert status["state"] == "skipped" and "not managed" in status["note"]


def test_routes_are_signed_and_validate_roles(app, agent_nodes):
    """POST/GET /v1/software through a real agent: 202, templates hashes, 400 naming the field, 401 unsigned."""
    import requests

    from app.models import Node

    node_id = agent_nodes.add("sw1", roles=("web",))
    with app.app_context():
        client = node_service.agent_client(db.session.get(Node, node_id))
        status, body = client.post("/v1/software", {"roles": ["web", "dns"]})
        assert status == 202 and body["roles"] == ["web", "dns"]
        for bad, field in ((["web", "nope"], "roles[1]"), ("web", "roles"), ([{"$ne": 1}], "roles[0]")):
            status, body = client.post("/v1/software", {"roles": bad}, check=False)
            assert status == 400 and field in body["fields"], body
        _, body = client.get("/v1/software")
        assert body["templates"] == templates_digest() and body["state"] in ("running", "skipped")
        assert client.stats()["roles"].keys() == {"web", "dns"}
        port = agent_nodes.agents[node_id].port
    assert requests.get(f"https://127.0.0.1:{port}/v1/software", verify=False, timeout=5).status_code == 401
