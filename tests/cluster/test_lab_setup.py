"""In the lab of real Debian nodes: adding nodes over SSH through the API, crash and retry, clear errors, states."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from agent.client import AgentClient
from tests.cluster.labpanel import LabPanel, reset, wait_for_sshd
from tests.conftest import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

@pytest.fixture(scope="module")
def nodes(lab_nodes):
    """Four lab nodes."""
    return lab_nodes(4)


@pytest.fixture(scope="module")
def lab_panel(nodes, tmp_path_factory):
    """The whole panel pointed at the lab's repository, with three setup workers."""
    from tests.lab.lab import Lab

    panel = LabPanel(tmp_path_factory.mktemp("labpanel"), Lab().repo_line).start()
    yield panel
    panel.stop()


def node_count(panel: LabPanel) -> int:
    return len(panel.request("GET", "/api/v1/nodes").json()["items"])


def operation_count(panel: LabPanel) -> int:
    return len(panel.request("GET", "/api/v1/operations").json()["items"])


def test_clear_errors_and_nothing_stored(lab_panel, nodes):
    """Wrong password, PermitRootLogin no, an unreachable address, a changed host key: 4xx, no node, no job."""
    node = nodes[3]
    reset(node)
    before = (node_count(lab_panel), operation_count(lab_panel))

    wrong = lab_panel.add(node, "wrong-password", password="not the password")
    assert wrong.status_code == 422, wrong.text
    assert "password" in wrong.json()["fields"] and "wrong" in wrong.json()["error"]

    node.exec("printf 'PermitRootLogin no\\n' > /etc/ssh/sshd_config.d/00-hostfleet-test.conf && systemctl reload ssh")
    wait_for_sshd(node)
    try:
        refused = lab_panel.add(node, "no-root-login")
        assert refused.status_code == 422, refused.text
        assert "PermitRootLogin prohibit-password" in refused.json()["error"]
        # Root may log in, but not the UID 0 admin user the master will use: step 1 says what to change.
        node.exec("printf 'PermitRootLogin no\\nMatch User root\\n  PermitRootLogin yes\\n' "
                  "> /etc/ssh/sshd_config.d/00-hostfleet-test.conf && systemctl reload ssh")
        wait_for_sshd(node)
        match = lab_panel.add(node, "no-admin-login")
        assert match.status_code == 422, match.text
        assert "`PermitRootLogin no` for the master's connections" in match.json()["error"]
        assert "Change it to `PermitRootLogin prohibit-password`" in match.json()["error"]
    finally:
        node.exec("rm -f /etc/ssh/sshd_config.d/00-hostfleet-test.conf && systemctl reload ssh")
        wait_for_sshd(node)

    started = time.monotonic()
    unreachable = lab_panel.add(node, "nowhere", address="198.18.0.250")
    assert unreachable.status_code == 422, unreachable.text
    assert "cannot reach 198.18.0.250" in unreachable.json()["fields"]["address"]
    assert time.monotonic() - started < 30

    other_key = "SHA256:" + "A" * 43
    mismatch = lab_panel.add(node, "other-key", host_key_fingerprint=other_key)
    assert mismatch.status_code == 409, mismatch.text
    assert "host key of" in mismatch.json()["fields"]["host_key_fingerprint"] and other_key in mismatch.text

    assert (node_count(lab_panel), operation_count(lab_panel)) == before
    # Nothing done on the node either: every refusal came before step 2.
    assert node.exec("getent passwd ispmaster", check=False).returncode != 0


def test_three_nodes_added_through_the_api_reach_ready(lab_panel, nodes):
    """Three fresh nodes, added at once: ispmaster UID 0, the master's key, a signed-only agent, nginx."""
    for node in nodes[:3]:
        reset(node)
    answers: dict[int, requests.Response] = {}

    def add(i):
        answers[i] = lab_panel.add(nodes[i], f"api{i + 1}", roles=["web", "dns"] if i == 0 else ["web"])

    threads = [threading.Thread(target=add, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = []
    for i in range(3):
        assert answers[i].status_code == 202, answers[i].text
        body = answers[i].json()
        assert body["operation"]["url"] == f"/api/v1/operations/{body['operation']['id']}"
        assert answers[i].headers["Location"] == body["operation"]["url"]
        ids.append(body["node"]["id"])
    for node_id in ids:
        lab_panel.wait_state(node_id, "ready", timeout=900)
    master_key = lab_panel.master_public_key()
    for node_id, node in zip(ids, nodes[:3], strict=True):
        setup = lab_panel.setup(node_id)
        assert [s["status"] for s in setup["steps"]] == ["done"] * 8
        assert setup["software"]["state"] == "done" and set(setup["software"]["packages"]) >= {"nginx", "php-fpm"}
        assert lab_panel.operation(setup["operation"]["id"])["status"] == "succeeded"
        assert node.exec("getent passwd ispmaster").stdout.split(":")[2:4] == ["0", "0"]
        assert node.exec("getent passwd ispmaster").stdout.split(":")[5] == "/root"
        assert master_key in node.exec("cat /root/.ssh/authorized_keys").stdout.splitlines()
        assert node.exec(["dpkg", "-s", "nginx"]).stdout.count("Status: install ok installed") == 1
        assert node.exec("stat -c %a /etc/hostfleet-agent/agent.json /etc/hostfleet-agent/secret").stdout.split() \
            == ["600", "600"]
        secret, fingerprint = lab_panel.secret_and_fingerprint(node_id)
        unsigned = requests.get(f"https://{node.address}:8443/v1/stats", verify=False, timeout=10)
        assert unsigned.status_code == 401
        forged = AgentClient(f"https://{node.address}:8443", "ab" * 32, fingerprint)
        with pytest.raises(Exception, match="rejected the master's signature"):
            forged.stats()
        assert AgentClient(f"https://{node.address}:8443", secret, fingerprint).stats()["api_version"] == 1
        assert lab_panel.node(node_id)["desyncs"] == []
    assert nodes[0].exec(["dpkg", "-s", "bind9"]).returncode == 0


def test_setup_killed_halfway_then_retried(lab_panel, nodes):
    """SIGKILL the workers in step 5; the retried job finishes and nothing is done twice."""
    node = nodes[3]
    reset(node)
    answer = lab_panel.add(node, "crash", roles=["web"])
    assert answer.status_code == 202, answer.text
    node_id = answer.json()["node"]["id"]
    wait_until(lambda: (lab_panel.node(node_id).get("state") != "error"
                        and (lab_panel.sql("SELECT setup_step FROM nodes WHERE id = ?", (node_id,))[0][0] or 0) >= 5),
               300, interval=0.1, what="the setup job to reach step 5")
    assert lab_panel.kill_default_workers()
    first_op = answer.json()["operation"]["id"]
    time.sleep(2)
    assert lab_panel.operation(first_op)["status"] == "running"
    assert lab_panel.node(node_id)["state"] == "connecting"
    for _ in range(len(lab_panel.workers)):
        lab_panel.start_worker()

    def retried():
        response = lab_panel.request("POST", f"/api/v1/nodes/{node_id}/retry")
        assert response.status_code in (202, 409), response.text
        return response if response.status_code == 202 else None

    retry = wait_until(retried, 60, interval=1, what="the dead job's lock to expire and the retry to start")
    lab_panel.wait_state(node_id, "ready", timeout=900)
    assert lab_panel.operation(retry.json()["operation"]["id"])["status"] == "succeeded"
    assert lab_panel.operation(first_op)["status"] == "failed"
    assert "interrupted" in lab_panel.operation(first_op)["message"]
    key = lab_panel.master_public_key()
    assert node.exec("cat /root/.ssh/authorized_keys").stdout.splitlines().count(key) == 1
    assert node.exec("grep -c '^ispmaster:' /etc/passwd").stdout.strip() == "1"
    assert node.exec("cat /etc/apt/sources.list.d/hostfleet.list").stdout.count("deb ") == 1
    assert node.exec("systemctl is-active hostfleet-agent").stdout.strip() == "active"
    assert node.exec(["dpkg", "-s", "nginx"]).returncode == 0


def _ready_node(lab_panel: LabPanel, name: str) -> dict:
    items = {n["name"]: n for n in lab_panel.request("GET", "/api/v1/nodes").json()["items"]}
    if name not in items:
        pytest.skip(f"node {name} was not added (an earlier test failed)")
    return lab_panel.wait_state(items[name]["id"], "ready", timeout=600)


def test_cut_link_unavailable_then_healed_ready(lab_panel, nodes):
    """A cut link: `unavailable` within the missed-poll policy; healed: `ready` by itself."""
    node = _ready_node(lab_panel, "api1")
    nodes[0].cut()
    try:
        started = time.monotonic()
        lab_panel.wait_state(node["id"], "unavailable", timeout=60)
        cut_s = time.monotonic() - started
    finally:
        nodes[0].heal()
    lab_panel.wait_state(node["id"], "ready", timeout=120)
    # missed_polls=2 polls of 2 s, each with the agent timeout: well under a minute.
    assert cut_s < 45


def test_incompatible_agent_then_one_click_update(lab_panel, nodes):
    """An agent speaking API 99 is `incompatible` and gets nothing; Update the agent brings it back to `ready`."""
    node = _ready_node(lab_panel, "api2")
    init = "/opt/hostfleet-agent/venv/lib/python3.11/site-packages/agent/__init__.py"
    nodes[1].exec(f"sed -i 's/^API_VERSION = 1$/API_VERSION = 99/' {init} && systemctl restart hostfleet-agent")
    lab_panel.wait_state(node["id"], "incompatible", timeout=60)
    changed = lab_panel.request("PATCH", f"/api/v1/nodes/{node['id']}", {"roles": ["web", "mail"]})
    assert changed.status_code == 202
    op = lab_panel.wait_operation(changed.json()["operation"]["id"])
    assert op["status"] == "failed" and "update the agent first" in op["message"]
    assert nodes[1].exec(["dpkg", "-s", "exim4-daemon-heavy"], check=False).returncode != 0, "nothing pushed"
    update = lab_panel.request("POST", f"/api/v1/nodes/{node['id']}/update-agent")
    assert update.status_code == 202, update.text
    assert lab_panel.wait_operation(update.json()["operation"]["id"])["status"] == "succeeded"
    assert "API_VERSION = 1\n" in nodes[1].exec(f"cat {init}").stdout
    lab_panel.wait_state(node["id"], "ready", timeout=600)
    assert nodes[1].exec(["dpkg", "-s", "exim4-daemon-heavy"]).returncode == 0


def test_roles_change_installs_and_stops(lab_panel, nodes):
    """Adding a role installs its packages; removing one stops its services."""
    node = _ready_node(lab_panel, "api1")
    changed = lab_panel.request("PATCH", f"/api/v1/nodes/{node['id']}", {"roles": ["dns"]})
    assert changed.status_code == 202, changed.text
    assert changed.json()["node"]["state"] == "installing"
    assert lab_panel.wait_operation(changed.json()["operation"]["id"])["status"] == "succeeded"
    lab_panel.wait_state(node["id"], "ready", timeout=600)
    assert lab_panel.setup(node["id"])["software"]["roles"] == ["dns"]
    assert nodes[0].exec("systemctl is-active nginx", check=False).stdout.strip() != "active"
    assert nodes[0].exec("systemctl is-active named", check=False).stdout.strip() == "active"
    flags = lab_panel.request("PATCH", f"/api/v1/nodes/{node['id']}", {"maintenance": True})
    assert flags.status_code == 200 and flags.json()["maintenance"] is True


def test_changed_host_key_stops_the_next_connection(lab_panel, nodes):
    """The node's SSH host key changes: the agent update stops with a clear error and touches nothing."""
    node = _ready_node(lab_panel, "api3")
    keys = nodes[2]
    keys.exec("mkdir -p /root/hostkeys-backup && cp -a /etc/ssh/ssh_host_* /root/hostkeys-backup/ && "
              "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A -q && systemctl restart ssh")
    wait_for_sshd(keys)
    try:
        update = lab_panel.request("POST", f"/api/v1/nodes/{node['id']}/update-agent")
        assert update.status_code == 202
        op = lab_panel.wait_operation(update.json()["operation"]["id"])
        assert op["status"] == "failed"
        assert "SSH host key of" in op["message"] and "changed" in op["message"]
    finally:
        keys.exec("cp -a /root/hostkeys-backup/ssh_host_* /etc/ssh/ && rm -rf /root/hostkeys-backup && "
                  "systemctl restart ssh")
        wait_for_sshd(keys)
    assert lab_panel.node(node["id"])["state"] == "ready"


def test_remove_node(lab_panel, nodes):
    """A node without user data is removed with its desyncs and history; the agent and the master's access go too."""
    node = _ready_node(lab_panel, "api3")
    server = next(n for n in nodes if n.address == node["address"])
    removed = lab_panel.request("DELETE", f"/api/v1/nodes/{node['id']}")
    assert removed.status_code == 200, removed.text
    assert "the agent was stopped and removed" in removed.json()["node"]
    assert lab_panel.request("GET", f"/api/v1/nodes/{node['id']}").status_code == 404

    def on_node(command: str) -> str:
        return server.exec(command + " 2>&1", check=False).stdout.strip()

    assert on_node("systemctl is-active hostfleet-agent") in ("inactive", "unknown")
    assert on_node("ss -Hltn 'sport = :8443'") == ""
    for path in ("/opt/hostfleet-agent", "/etc/hostfleet-agent", "/etc/systemd/system/hostfleet-agent.service"):
        assert on_node(f"test -e {path} || echo gone") == "gone", path
    assert on_node("getent passwd ispmaster || echo gone") == "gone"
    assert "hostfleet-master" not in on_node("cat /root/.ssh/authorized_keys")
