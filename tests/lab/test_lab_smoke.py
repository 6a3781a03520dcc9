"""Smoke test of the lab: two real Debian nodes, root ssh, bridge reachability, cut/heal, local repo."""

from __future__ import annotations

import time

import paramiko
import pytest

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1800)]


def _reaches(src, dst, port: int = 22) -> bool:
    """True when src opens a TCP connection to dst's port (bash's /dev/tcp, 3 s budget)."""
    res = src.exec(["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{dst.address}/{port}"], check=False)
    return res.returncode == 0


def _wait(pred, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.5)
    return pred()


@pytest.fixture(scope="module")
def two(lab_nodes):
    return lab_nodes(2)


def test_root_password_ssh_from_host(two):
    a = two[0]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(a.address, username="root", password=a.root_password, allow_agent=False,
                   look_for_keys=False, timeout=10)
    try:
        _, out, _ = client.exec_command("id -u; hostname; . /etc/os-release; echo $VERSION_ID")
        assert out.read().decode().split() == ["0", a.name, "12"]
    finally:
        client.close()


def test_wrong_password_refused(two):
    a = two[0]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(a.address, username="root", password=a.root_password + "x", allow_agent=False,
                       look_for_keys=False, timeout=10)
    client.close()


def test_nodes_reach_each_other_without_default_route(two):
    a, b = two
    assert _reaches(a, b) and _reaches(b, a)
    for node in two:
        assert node.exec(["ip", "-4", "route", "show", "default"]).stdout.strip() == ""
        assert node.exec(["ip", "-6", "route", "show", "default"]).stdout.strip() == ""
        assert node.address in node.exec(["ip", "-4", "-o", "addr", "show", "host0"]).stdout


def test_cut_and_heal(two):
    a, b = two
    a.cut()
    try:
        assert a.is_cut()
        assert _wait(lambda: not _reaches(b, a), 10), "node still reachable after cut"
        assert not _reaches(a, b)
    finally:
        a.heal()
    assert not a.is_cut()
    assert _wait(lambda: _reaches(b, a), 30), "node not reachable after heal"
    assert a.address in a.exec(["ip", "-4", "-o", "addr", "show", "host0"]).stdout


def test_apt_install_from_local_repository(lab, two):
    node = two[1]
    node.exec(f"echo '{lab.repo_line}' > /etc/apt/sources.list.d/hostfleet-lab.list")
    node.exec("apt-get update -q", timeout=120)
    res = node.exec("DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx", check=False, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "install ok installed" in node.exec(["dpkg-query", "-W", "-f=${Status}", "nginx"]).stdout
    assert _wait(lambda: node.exec(["systemctl", "is-active", "nginx"], check=False).stdout.strip() == "active", 30)
    out = node.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{node.address}/"]).stdout
    assert out == "200"


def test_recreate_gives_new_host_key(lab, two):
    a = two[0]
    before = a.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout
    fresh = lab.recreate(a.name)
    assert fresh.address == a.address and fresh.root_password == a.root_password
    assert fresh.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout != before
    assert a.exec(["hostname"]).stdout.strip() == a.name
