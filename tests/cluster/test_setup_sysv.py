"""Nodes whose init is not systemd: step 1's detection, the agent's init script and supervisor, per-init commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.__main__ import main as agent_main
from agent.__main__ import parse_reload_command
from agent.config import AgentConfig, ConfigError, initialize
from agent.software import SoftwareManager, service_commands
from app.services import setup
from tests.cluster.fakessh import FakeSSHServer
from tests.conftest import wait_until


@pytest.fixture
def sshd():
    """An SSH server on 127.0.0.1 in front of a FakeNode."""
    server = FakeSSHServer()
    yield server
    server.close()


def session(server: FakeSSHServer) -> tuple[setup.Session, object]:
    """A root session on the fake node."""
    conn, _ = setup.connect("127.0.0.1", server.port, "root", password=server.node.root_password)
    return setup.Session(conn, "127.0.0.1", lambda _line: None), conn


def test_step_1_detects_systemd(sshd):
    """/run/systemd/system present: systemd, said in step 1's result line."""
    s, conn = session(sshd)
    try:
        line = setup.step_check_os(s)
    finally:
        conn.close()
    assert s.init_system == setup.SYSTEMD
    assert "init: systemd (the agent runs as a systemd unit)" in line


def test_step_1_accepts_a_node_without_systemd(sshd):
    """No /run/systemd/system: the node is set up with init scripts, and step 1's line says so."""
    sshd.node.systemd = False
    s, conn = session(sshd)
    try:
        line = setup.step_check_os(s)
    finally:
        conn.close()
    assert s.init_system == setup.SYSV
    assert "init: not systemd, init scripts" in line and setup.INIT_SCRIPT in line


def test_step_1_names_missing_init_tools(sshd):
    """No systemd and no start-stop-daemon: a clear error naming what is missing, on the address."""
    sshd.node.systemd = False
    sshd.node.sysv_tools = ("service",)
    s, conn = session(sshd)
    try:
        with pytest.raises(setup.SetupError) as caught:
            setup.step_check_os(s)
    finally:
        conn.close()
    assert caught.value.field == "address"
    assert "start-stop-daemon, update-rc.d" in caught.value.message


def test_bootstrap_logs_the_init(app, sshd):
    """The node's setup log carries step 1's line with the init it found."""
    sshd.node.systemd = False
    lines: list[str] = []
    node = setup.NodeInput(name="n1", address="127.0.0.1", ssh_port=sshd.port, roles=["web"],
                           password=sshd.node.root_password)
    with app.app_context():
        setup.bootstrap(node, app.config["DATA_DIR"], lines.append)
    assert any(line.startswith("step 1/8") and "init: not systemd, init scripts" in line for line in lines)


def test_reload_commands_per_init():
    """systemd keeps systemctl reload-or-restart; init scripts get `service` reload, else restart."""
    assert setup.reload_commands(setup.SYSTEMD) == setup.RELOAD_COMMANDS
    sysv = setup.reload_commands(setup.SYSV)
    assert set(sysv) == set(setup.RELOAD_COMMANDS)
    assert sysv["firewall"] == setup.RELOAD_COMMANDS["firewall"]
    assert not any("systemctl" in command for command in sysv.values())
    for service, script in {"nginx": "nginx", "php-fpm": "php8.2-fpm", "bind": "named", "exim": "exim4",
                            "dovecot": "dovecot"}.items():
        # The agent takes each as SERVICE=COMMAND on its command line (agent init --reload-command).
        name, argv = parse_reload_command(f"{service}={sysv[service]}")
        assert (name, argv) == (service, ["sh", "-c", f"service {script} status >/dev/null 2>&1 && "
                                                      f"service {script} reload || service {script} restart"])


def test_agent_control_per_init():
    """The agent is started by the node's own init."""
    assert setup.agent_control(setup.SYSTEMD, "restart") == "systemctl restart hostfleet-agent.service"
    assert setup.agent_control(setup.SYSV, "restart") == "service hostfleet-agent restart"
    assert setup.agent_control(setup.SYSV, "status") == "service hostfleet-agent status"


def test_init_script_is_posix_sh_with_an_lsb_header(tmp_path):
    """The init script parses with sh -n and dash -n, has the LSB header update-rc.d reads, and no placeholders."""
    text = setup.render_init_script()
    path = tmp_path / "hostfleet-agent"
    path.write_text(text)
    assert text.startswith("#!/bin/sh\n### BEGIN INIT INFO\n")
    for line in ("# Provides:          hostfleet-agent", "# Default-Start:     2 3 4 5",
                 "# Default-Stop:      0 1 6", "### END INIT INFO"):
        assert line in text.splitlines()
    assert "@" not in text
    assert "PYTHON=/opt/hostfleet-agent/venv/bin/python\n" in text
    assert "LOG=/var/log/hostfleet-agent.log\n" in text and "PIDFILE=/run/hostfleet-agent.pid\n" in text
    assert "serve --config \"$CONFIG\"" in text
    for shell in ("sh", "dash"):
        if shutil.which(shell):
            result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
    checker = shutil.which("checkbashisms")
    if checker:
        result = subprocess.run([checker, "--posix", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_install_service_writes_the_init_script_and_enables_it():
    """Step 5 on a node without systemd: the init script (0755), update-rc.d, no systemctl."""
    s = RecordingSession(init_system=setup.SYSV)
    outcome = setup.install_service(s)
    assert s.files[setup.INIT_SCRIPT] == setup.render_init_script()
    assert any("chmod 0755" in c for c in s.commands)
    assert "update-rc.d hostfleet-agent defaults && update-rc.d hostfleet-agent enable" in s.commands
    assert not any("systemctl" in c for c in s.commands)
    assert "wrote /etc/init.d/hostfleet-agent" in outcome
    again = RecordingSession(init_system=setup.SYSV, files=dict(s.files))
    assert "already in place" in setup.install_service(again)
    assert not any(c.startswith("cat >") for c in again.commands)


def test_install_service_with_systemd_is_unchanged():
    """Step 5 under systemd: the unit, daemon-reload, systemctl enable, and no init script."""
    s = RecordingSession(init_system=setup.SYSTEMD)
    assert setup.install_service(s) == "wrote /etc/systemd/system/hostfleet-agent.service"
    assert s.files["/etc/systemd/system/hostfleet-agent.service"] == setup.UNIT_TEXT
    assert "systemctl enable hostfleet-agent.service" in s.commands
    assert not any("update-rc.d" in c or "init.d" in c for c in s.commands)


def test_configure_agent_uses_the_nodes_init():
    """Step 7 without systemd: `agent init --init-system sysv`, `service` reloads, the agent (re)started by service."""
    s = RecordingSession(init_system=setup.SYSV)
    node = SimpleNamespace(agent_port=8443, roles=["web"], name="n1", address="198.18.0.11")
    setup.step_configure_agent(s, node, "ab" * 32)
    init = next(c for c in s.commands if " -m agent init " in c)
    assert "--init-system sysv" in init
    assert "service nginx status >/dev/null 2>&1 && service nginx reload || service nginx restart" in init
    assert "systemctl" not in init
    assert "service hostfleet-agent status" in s.commands and "service hostfleet-agent restart" in s.commands
    assert not any("systemctl" in c for c in s.commands)


def test_decommission_stops_the_agent_with_either_init():
    """Removal stops the agent by its unit or its init script, and removes both files."""
    script = setup.DECOMMISSION_SCRIPT
    assert "systemctl disable --now hostfleet-agent.service" in script
    assert "service hostfleet-agent stop" in script and "update-rc.d hostfleet-agent remove" in script
    assert "rm -f /etc/init.d/hostfleet-agent" in script
    result = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_agent_config_records_the_init(tmp_path, capsys):
    """`agent init --init-system sysv` writes it to the config; an unknown init is refused."""
    code = agent_main(["init", "--config", str(tmp_path / "agent.json"), "--root", str(tmp_path / "root"),
                       "--state-dir", str(tmp_path / "state"), "--secret-file", str(tmp_path / "secret"),
                       "--hostname", "localhost", "--init-system", "sysv"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["config"]["init_system"] == "sysv"
    assert AgentConfig.load(tmp_path / "agent.json").init_system == "sysv"
    with pytest.raises(ConfigError, match="init_system"):
        AgentConfig(root=tmp_path, state_dir=tmp_path, secret_file=tmp_path / "s", cert_file=tmp_path / "c",
                    key_file=tmp_path / "k", init_system="upstart")


def test_service_commands_per_init():
    """systemctl enable/disable --now under systemd; update-rc.d and service otherwise."""
    assert service_commands("systemd", "nginx", True) == [["systemctl", "enable", "--now", "nginx"]]
    assert service_commands("systemd", "nginx", False) == [["systemctl", "disable", "--now", "nginx"]]
    assert service_commands("sysv", "nginx", True) == [
        ["update-rc.d", "nginx", "defaults"], ["update-rc.d", "nginx", "enable"], ["service", "nginx", "start"]]
    assert service_commands("sysv", "named", False) == [
        ["service", "named", "stop"], ["update-rc.d", "named", "disable"]]


def test_software_manager_starts_and_stops_role_services_with_init_scripts(tmp_path):
    """Roles web -> dns on a node without systemd: nginx and php-fpm stopped and disabled, named enabled and started."""
    result = initialize(tmp_path / "agent.json", root=tmp_path / "root", state_dir=tmp_path / "state",
                        secret_file=tmp_path / "secret", hostnames=["localhost"], init_system="sysv")
    config = AgentConfig.load(result["config_path"])
    for script in ("nginx", "php8.2-fpm", "named"):
        (tmp_path / "root/etc/init.d").mkdir(parents=True, exist_ok=True)
        (tmp_path / "root/etc/init.d" / script).write_text("#!/bin/sh\n")
    calls = tmp_path / "calls"
    fakes = {}
    for name in ("service", "update-rc.d", "systemctl"):
        fakes[name] = tmp_path / name
        fakes[name].write_text(f"#!/bin/sh\necho {name} \"$@\" >> {calls}\n")
        fakes[name].chmod(0o755)
    manager = SoftwareManager(config, systemctl=str(fakes["systemctl"]), service=str(fakes["service"]),
                              update_rc_d=str(fakes["update-rc.d"]), manage_packages=True)
    manager._services(["dns", "mail"], ["web"])
    lines = calls.read_text().splitlines()
    assert lines == [
        "service nginx stop", "update-rc.d nginx disable",
        "service php8.2-fpm stop", "update-rc.d php8.2-fpm disable",
        "update-rc.d named defaults", "update-rc.d named enable", "service named start",
    ]
    log = manager.status()["log"]
    assert "dovecot: no init script /etc/init.d/dovecot; left as it is" in log


# ---------------------------------------------------------------------------------------------
# The supervisor, run for real on this machine with a stand-in agent

FAKE_AGENT = "import os, sys, time\nprint('fake agent', os.getpid(), sys.argv[1:], flush=True)\ntime.sleep(3600)\n"


@pytest.fixture
def supervised(tmp_path):
    """The rendered init script pointed at a tmp dir and a stand-in `agent` package (python3 -m agent)."""
    if not shutil.which("start-stop-daemon"):
        pytest.skip("start-stop-daemon (dpkg) is not installed here")
    package = tmp_path / "lib/agent"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_AGENT)
    python = os.path.realpath(sys.executable)
    paths = {"python": python, "config": str(tmp_path / "agent.json"), "log": str(tmp_path / "agent.log"),
             "console_log": str(tmp_path / "console.log"), "pidfile": str(tmp_path / "supervisor.pid"),
             "agent_pidfile": str(tmp_path / "agent.pid")}
    script = tmp_path / "hostfleet-agent"
    script.write_text(setup.render_init_script(**paths))
    script.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "lib")}

    def run(action: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), action], capture_output=True, text=True, env=env, timeout=60)

    handle = SimpleNamespace(run=run, **{k: Path(v) for k, v in paths.items() if k != "python"})
    yield handle
    run("stop")


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_supervisor_restarts_the_agent_and_stops_cleanly(supervised):
    """start → running; the agent killed comes back within seconds under a new pid; stop leaves nothing running."""
    started = supervised.run("start")
    assert started.returncode == 0, started.stdout + started.stderr
    wait_until(lambda: _alive(_pid(supervised.agent_pidfile)), 15, interval=0.1, what="the agent to start")
    status = supervised.run("status")
    assert status.returncode == 0 and "is running" in status.stdout
    assert supervised.run("start").returncode == 0, "a second start is a no-op"
    supervisor, first = _pid(supervised.pidfile), _pid(supervised.agent_pidfile)
    # The agent's pid is written as it starts; what it prints comes once Python is up.
    wait_until(lambda: "fake agent" in supervised.console_log.read_text(), 15, interval=0.1,
               what="the agent's output in the console log")
    assert "'serve', '--config'" in supervised.console_log.read_text()
    assert stat.S_IMODE(supervised.log.stat().st_mode) == 0o600
    assert stat.S_IMODE(supervised.console_log.stat().st_mode) == 0o600
    # The agent runs with systemd's default umask (it makes folders nginx's workers must read).
    umask = [line for line in Path(f"/proc/{_pid(supervised.agent_pidfile)}/status").read_text().splitlines()
             if line.startswith("Umask:")]
    assert umask == ["Umask:\t0022"]

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: _alive(_pid(supervised.agent_pidfile)) and _pid(supervised.agent_pidfile) != first, 10,
               interval=0.1, what="the supervisor to restart the agent")
    second = _pid(supervised.agent_pidfile)
    assert _pid(supervised.pidfile) == supervisor
    assert "the agent exited (status 137); restarting it in 2 s" in supervised.log.read_text()

    stopped = supervised.run("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not _alive(supervisor) and not _alive(second)
    assert not supervised.pidfile.exists() and not supervised.agent_pidfile.exists()
    assert supervised.run("status").returncode != 0
    assert supervised.log.read_text().rstrip().endswith("supervisor: stopped")


class RecordingSession(setup.Session):
    """A Session that answers from a dict of files and records every command (no SSH)."""

    def __init__(self, init_system: str, files: dict[str, str] | None = None):
        super().__init__(conn=None, address="198.18.0.11", log=lambda _line: None, init_system=init_system)
        self.files = files or {}
        self.commands: list[str] = []

    def run(self, command: str, *, input: str | None = None, timeout: int = 120, check: bool = True,
            what: str | None = None):
        self.commands.append(command)
        out, code = "", 0
        if command.startswith("cat > "):
            target = re.search(r"mv -f \S+ (\S+)", command).group(1)
            self.files[target] = input or ""
        elif command.startswith("cat "):
            path = command.split()[1]
            out, code = (self.files[path], 0) if path in self.files else ("", 1)
        elif " -m agent init " in command:
            out = json.dumps({"fingerprint": "ab" * 32})
        elif command.startswith("sha256sum"):
            out = "0" * 64 + "  file\n"
        elif "status" in command:
            code = 3
        return SimpleNamespace(stdout=out, stderr="", exited=code)
