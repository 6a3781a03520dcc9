"""Where the agent lives on a node, its systemd unit and supervised init script, and how it is controlled."""

from __future__ import annotations

import shlex
from pathlib import Path

ADMIN_USER = "ispmaster"
AGENT_HOME = "/opt/hostfleet-agent"
AGENT_VENV = f"{AGENT_HOME}/venv"
AGENT_ETC = "/etc/hostfleet-agent"
AGENT_CONFIG = f"{AGENT_ETC}/agent.json"
AGENT_SECRET = f"{AGENT_ETC}/secret"
AGENT_STATE = "/var/lib/hostfleet-agent"
AGENT_LOG = "/var/log/hostfleet-agent.log"
AGENT_UNIT = "hostfleet-agent.service"
AGENT_PORT = 8443
APT_LIST = "/etc/apt/sources.list.d/hostfleet.list"
# How the agent reloads each service it manages on a real node (agent/ops apply_files keys), per init.
RELOAD_COMMANDS = {
    "firewall": "nft -f /etc/hostfleet/firewall.nft",
    "nginx": "systemctl reload-or-restart nginx",
    "php-fpm": "systemctl reload-or-restart php8.2-fpm",
    "bind": "systemctl reload-or-restart named",
    "exim": "systemctl reload-or-restart exim4",
    "dovecot": "systemctl reload-or-restart dovecot",
}
# The init scripts Debian's packages ship, behind the agent's service names.
INIT_SCRIPT_NAMES = {"nginx": "nginx", "php-fpm": "php8.2-fpm", "bind": "named", "exim": "exim4",
                     "dovecot": "dovecot"}
SYSTEMD = "systemd"
SYSV = "sysv"
UNIT_TEXT = f"""[Unit]
Description=Hostfleet node agent
After=network-online.target

[Service]
ExecStart={AGENT_VENV}/bin/python -m agent serve --config {AGENT_CONFIG}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""
AGENT_SERVICE = "hostfleet-agent"
INIT_SCRIPT = f"/etc/init.d/{AGENT_SERVICE}"
SUPERVISOR_PIDFILE = f"/run/{AGENT_SERVICE}.pid"
AGENT_PIDFILE = f"/run/{AGENT_SERVICE}.agent.pid"
# What the agent writes to stdout/stderr (a traceback before its log is set up): the journal's part.
AGENT_CONSOLE_LOG = "/var/log/hostfleet-agent.console.log"

q = shlex.quote
# The LSB init script (a template: @NAME@ placeholders) for nodes whose init is not systemd.
INIT_SCRIPT_TEMPLATE = (Path(__file__).parent / "hostfleet-agent.init").read_text()


def reload_commands(init_system: str) -> dict[str, str]:
    """How the agent reloads each service it manages on a node with this init."""
    if init_system == SYSTEMD:
        return dict(RELOAD_COMMANDS)
    commands = {"firewall": RELOAD_COMMANDS["firewall"]}
    for service, script in INIT_SCRIPT_NAMES.items():
        # Init scripts have no reload-or-restart, and some (nginx's) answer 0 to a reload while stopped:
        # reload what runs, (re)start what does not run or refused the reload.
        line = f"service {script} status >/dev/null 2>&1 && service {script} reload || service {script} restart"
        commands[service] = f"sh -c {q(line)}"
    return commands


def agent_control(init_system: str, action: str) -> str:
    """The shell command that starts/stops/restarts the agent (or asks its status) under the node's init."""
    if init_system == SYSTEMD:
        return f"systemctl {action} {AGENT_UNIT}"
    return f"service {AGENT_SERVICE} {action}"


def render_init_script(*, python: str = f"{AGENT_VENV}/bin/python", config: str = AGENT_CONFIG,
                       log: str = AGENT_LOG, console_log: str = AGENT_CONSOLE_LOG, pidfile: str = SUPERVISOR_PIDFILE,
                       agent_pidfile: str = AGENT_PIDFILE) -> str:
    """The LSB init script that runs the agent under a small supervisor where systemd is not the init."""
    values = {"PYTHON": python, "CONFIG": config, "LOG": log, "CONSOLE_LOG": console_log, "PIDFILE": pidfile,
              "AGENT_PIDFILE": agent_pidfile}
    text = INIT_SCRIPT_TEMPLATE
    for name, value in values.items():
        text = text.replace(f"@{name}@", q(value))
    return text


# What removing a node undoes on it, as ispmaster (UID 0): the agent and its secret, the panel's
# apt source, the master's key and ispmaster itself. The sites, zones and mail it serves stay.
# The agent is stopped by the node's own init: its systemd unit, or the supervised init script.
DECOMMISSION_SCRIPT = f"""
if [ -d /run/systemd/system ]; then
systemctl disable --now {AGENT_UNIT} 2>/dev/null || true
rm -f /etc/systemd/system/{AGENT_UNIT}
systemctl daemon-reload 2>/dev/null || true
fi
if [ -e {INIT_SCRIPT} ]; then
service {AGENT_SERVICE} stop >/dev/null 2>&1 || {INIT_SCRIPT} stop >/dev/null 2>&1 || true
rm -f {INIT_SCRIPT}
update-rc.d {AGENT_SERVICE} remove >/dev/null 2>&1 || true
fi
rm -f /etc/systemd/system/{AGENT_UNIT} {SUPERVISOR_PIDFILE} {AGENT_PIDFILE}
rm -rf {AGENT_HOME} {AGENT_ETC} {AGENT_STATE} {APT_LIST}
sed -i '/ hostfleet-master$/d' /root/.ssh/authorized_keys 2>/dev/null || true
userdel -f {ADMIN_USER} 2>/dev/null || true
echo done
"""
DECOMMISSION_TIMEOUT_S = 60
