"""In the lab: a Debian 12 node whose init is not systemd, added through the API, served, and removed.

The node (`hf-sysv200`, 198.18.0.210) is a systemd-nspawn container started without --boot: a
shell init as PID 2 brings up its address and runs its init scripts (sshd among them), as a
sysvinit or plain-supervisor hosting container does. The panel must set it up with init scripts:
the agent under its supervisor from /etc/init.d/hostfleet-agent, role services with `service`.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from agent.client import AgentClient
from tests.cluster.labpanel import LabPanel
from tests.conftest import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

USER = "sysvuser"
PASSWORD = "a long lab password"
SITE = "sysv.hf-lab.test"


@pytest.fixture(scope="module")
def node(lab_sysv_node):
    """The lab's node without systemd, fresh from the base."""
    return lab_sysv_node


@pytest.fixture(scope="module")
def panel(node, tmp_path_factory):
    """The whole panel pointed at the lab's repository."""
    from tests.lab.lab import Lab

    lab_panel = LabPanel(tmp_path_factory.mktemp("labsysv"), Lab().repo_line, workers=2).start()
    yield lab_panel
    lab_panel.stop()


@pytest.fixture(scope="module")
def added(panel, node):
    """The node added with the web role through the API, waited for until `ready`: its id."""
    answer = panel.add(node, "sysv1", roles=["web"])
    assert answer.status_code == 202, answer.text
    node_id = answer.json()["node"]["id"]
    started = time.monotonic()
    panel.wait_state(node_id, "ready", timeout=900)
    print(f"\nsysv1 ready {time.monotonic() - started:.0f} s after POST /api/v1/nodes")
    return node_id


def on_node(node, command: str) -> str:
    """Run a shell command in the node; its stdout and stderr."""
    result = node.exec(command + " 2>&1", check=False)
    return result.stdout.strip()


def agent_pid(node) -> int | None:
    """The agent's pid as its supervisor recorded it, if that process is alive."""
    text = on_node(node, "p=$(cat /run/hostfleet-agent.agent.pid) && kill -s 0 \"$p\" && echo \"$p\"")
    return int(text) if text.isdigit() else None


def test_the_node_has_no_systemd(node):
    """The premise: no systemd in the node; sshd was started by its init script."""
    assert on_node(node, "test -d /run/systemd/system && echo systemd || echo none") == "none"
    assert "/usr/local/sbin/hostfleet-lab-init" in on_node(node, "tr '\\0' ' ' < /proc/2/cmdline")
    assert on_node(node, "ps -eo comm | grep -cx systemd") == "0"
    assert "sshd is running" in on_node(node, "service ssh status")


def test_added_through_the_api_reaches_ready_with_init_scripts(panel, node, added):
    """All 8 steps done; step 1 says init scripts; the agent config says sysv; the supervisor runs it."""
    setup = panel.setup(added)
    assert [s["status"] for s in setup["steps"]] == ["done"] * 8
    # The log is on the node's page (HTMX); the API has none, so read it where the panel keeps it.
    log = panel.sql("SELECT log FROM operations WHERE id = ?", (setup["operation"]["id"],))[0][0]
    step1 = [line for line in log.splitlines() if line.startswith("step 1/8")]
    print("\n".join(["setup log, step 1:", *step1]))
    assert any("init: not systemd, init scripts" in line for line in step1)
    assert any("/etc/init.d/hostfleet-agent" in line and "update-rc.d" in line for line in log.splitlines())
    assert '"init_system": "sysv"' in on_node(node, "cat /etc/hostfleet-agent/agent.json")
    assert "service nginx reload || service nginx restart" in on_node(node, "cat /etc/hostfleet-agent/agent.json")
    assert "systemctl" not in on_node(node, "cat /etc/hostfleet-agent/agent.json")
    status = on_node(node, "service hostfleet-agent status")
    print(f"service hostfleet-agent status: {status}")
    assert "hostfleet-agent is running" in status
    assert on_node(node, "ls /etc/rc2.d/ | grep hostfleet-agent").startswith("S")
    assert setup["software"]["state"] == "done" and "nginx" in setup["software"]["packages"]


def test_killed_agent_comes_back_under_its_supervisor(panel, node, added):
    """SIGKILL the agent: the supervisor starts it again within seconds and it answers signed requests."""
    first = agent_pid(node)
    assert first, on_node(node, "cat /var/log/hostfleet-agent.log | tail -5")
    on_node(node, f"kill -s KILL {first}")
    killed = time.monotonic()
    wait_until(lambda: (agent_pid(node) or first) != first, 15, interval=0.2,
               what="the supervisor to start the agent again")
    secret, fingerprint = panel.secret_and_fingerprint(added)
    client = AgentClient(f"https://{node.address}:8443", secret, fingerprint, timeout=(3.05, 10))

    def answers():
        try:
            return client.stats()
        except Exception:  # noqa: BLE001 - the new agent is still binding its port
            return None

    stats = wait_until(answers, 20, interval=0.2, what="the restarted agent to answer")
    back = time.monotonic() - killed
    print(f"\nagent pid {first} killed; pid {agent_pid(node)} answers API {stats['api_version']} after {back:.1f} s")
    print(on_node(node, "grep 'supervisor' /var/log/hostfleet-agent.log | tail -3"))
    assert back < 15
    assert "the agent exited (status 137); restarting it" in on_node(node, "cat /var/log/hostfleet-agent.log")
    panel.wait_state(added, "ready", timeout=120)


def test_agent_update_restarts_it_with_its_init_script(panel, node, added):
    """One-click agent update: reinstalled over SSH, restarted by `service`, still supervised, `ready`."""
    before = agent_pid(node)
    update = panel.request("POST", f"/api/v1/nodes/{added}/update-agent")
    assert update.status_code == 202, update.text
    op = panel.wait_operation(update.json()["operation"]["id"])
    assert op["status"] == "succeeded", op
    wait_until(lambda: (agent_pid(node) or before) != before, 15, interval=0.2, what="the agent to be restarted")
    assert "hostfleet-agent is running" in on_node(node, "service hostfleet-agent status")
    assert on_node(node, "ps -eo args | grep -c '[h]ostfleet-agent supervise'") == "1"
    panel.wait_state(added, "ready", timeout=120)


def test_nginx_installed_and_running_by_its_init_script(node, added):
    """nginx from the lab's repository, started and enabled at boot by `service`/`update-rc.d`."""
    assert "Status: install ok installed" in on_node(node, "dpkg -s nginx")
    status = on_node(node, "service nginx status")
    print(f"\nservice nginx status: {status}")
    assert "nginx is running" in status
    assert on_node(node, "ls /etc/rc2.d/ | grep nginx").startswith("S")
    assert node.exec("service php8.2-fpm status", check=False).returncode == 0


def test_a_web_domain_reaches_the_node(panel, node, added):
    """A user placed on the node adds a web domain: nginx (reloaded with `service`) serves its page."""
    user = panel.request("POST", "/api/v1/users", {"name": USER, "password": PASSWORD, "roles": ["web"],
                                                    "nodes": {"web": "sysv1"}})
    assert user.status_code == 201, user.text
    # The user holds no zone (web role only): an administrator adds the site, as for a name whose DNS is elsewhere.
    answer = panel.request("POST", "/api/v1/webdomains", {"name": SITE, "owner": USER})
    assert answer.status_code == 201, answer.text

    seen: list[str] = []

    def served():
        proc = subprocess.run(["curl", "-sS", "-m", "10", "-H", f"Host: {SITE}", "-w", "\n%{http_code}",
                               f"http://{node.address}/"], capture_output=True, text=True, timeout=20)
        body, _, status = proc.stdout.rpartition("\n")
        seen.append(f"{status} {body[:200]!r} {proc.stderr[:200]}")
        return (status, body) if status == "200" and f"<h1>{SITE}</h1>" in body else None

    try:
        status, _ = wait_until(served, 30, interval=0.3, what=f"http://{SITE}/ to be served by the node")
    except AssertionError as exc:
        diagnosis = on_node(node, "nginx -T 2>&1 | grep -E 'server_name|include'; ls -laR /etc/nginx/conf.d "
                                  "/etc/nginx/hostfleet; service nginx status; tail -20 /var/log/hostfleet-agent.log; "
                                  "tail -5 /var/log/nginx/error.log")
        raise AssertionError(f"{exc}; answer {answer.text[:500]}; last curl {seen[-1:]}; on the node:\n{diagnosis}") \
            from None
    print(f"\ncurl -H 'Host: {SITE}' http://{node.address}/ -> {status}, <h1>{SITE}</h1>")
    removed = panel.request("DELETE", f"/api/v1/users/{user.json()['id']}")
    assert removed.status_code in (200, 202, 204), removed.text
    if removed.status_code == 202:
        assert panel.wait_operation(removed.json()["operation"]["id"])["status"] == "succeeded"


def test_removing_the_node_leaves_no_agent(panel, node, added):
    """DELETE the node: agent stopped, init script and its rc links gone, no ispmaster, no master key."""
    removed = panel.request("DELETE", f"/api/v1/nodes/{added}")
    assert removed.status_code == 200, removed.text
    print(f"\nremoval: {removed.json()['node']}")
    assert "the agent was stopped and removed" in removed.json()["node"]
    assert on_node(node, "ps -eo args | grep -c '[a]gent serve'") == "0"
    assert on_node(node, "ps -eo args | grep -c '[h]ostfleet-agent supervise'") == "0"
    assert on_node(node, "ss -Hltn 'sport = :8443'") == ""
    for path in ("/etc/init.d/hostfleet-agent", "/opt/hostfleet-agent", "/etc/hostfleet-agent",
                 "/run/hostfleet-agent.pid", "/run/hostfleet-agent.agent.pid"):
        assert on_node(node, f"test -e {path} || echo gone") == "gone", path
    assert on_node(node, "ls /etc/rc*.d/ | grep -c hostfleet-agent") == "0"
    assert on_node(node, "getent passwd ispmaster || echo gone") == "gone"
    assert "hostfleet-master" not in on_node(node, "cat /root/.ssh/authorized_keys")
    assert "nginx is running" in on_node(node, "service nginx status"), "its sites stay served"
