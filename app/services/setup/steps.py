"""The 8 setup steps, each idempotent: read the node's state, change only what differs."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fabric
from flask import current_app

from agent.client import AgentClient, AgentError
from agent.software import TEMPLATES, templates_digest
from app.models import Node
from app.services.nodes import read_stats
from app.services.setup.errors import SetupError
from app.services.setup.inputs import validate_apt_source
from app.services.setup.paths import (
    ADMIN_USER,
    AGENT_CONFIG,
    AGENT_ETC,
    AGENT_HOME,
    AGENT_LOG,
    AGENT_SECRET,
    AGENT_SERVICE,
    AGENT_STATE,
    AGENT_UNIT,
    AGENT_VENV,
    APT_LIST,
    INIT_SCRIPT,
    SYSTEMD,
    SYSV,
    UNIT_TEXT,
    agent_control,
    q,
    reload_commands,
    render_init_script,
)
from app.services.setup.ssh import connect, master_key
from app.services.wheelhouse import Wheelhouse, build_wheelhouse

ALLOWED_ROOT_LOGIN = ("yes", "prohibit-password", "without-password")
AGENT_WAIT_S = 45
SUPPORTED_OS = {"debian": 12, "ubuntu": 22}
INSTALLED_VERSION = "import importlib.metadata as m; print(m.version('hostfleet-agent'))"

STEPS = (
    "Check the OS and sshd's PermitRootLogin",
    f"Create the admin user {ADMIN_USER} (UID 0)",
    "Register the master's SSH key",
    "Add the package repository (policy node_apt_source)",
    "Install the node agent (venv from the master's wheelhouse, systemd unit or supervised init script)",
    "Copy the agent's templates",
    "Configure the agent's HTTPS endpoint, secret and pinned certificate",
    "Register all synchronizers",
)




@dataclass
class Session:
    """One SSH connection to a node being set up, with the log the steps write to."""

    conn: fabric.Connection
    address: str
    log: Callable[[str], None]
    python_version: str = ""
    # Step 1 finds it: SYSTEMD when systemd is the node's init, else SYSV (Debian's init scripts).
    init_system: str = ""

    def run(self, command: str, *, input: str | None = None, timeout: int = 120, check: bool = True,
            what: str | None = None):
        """Run a shell command (every value in it already quoted); raise SetupError on failure."""
        stream = io.StringIO(input) if input is not None else False
        try:
            result = self.conn.run(command, hide=True, warn=True, in_stream=stream, timeout=timeout, pty=False)
        except Exception as exc:  # noqa: BLE001 - invoke raises several types for timeouts and I/O
            raise SetupError(f"{what or command}: {exc}") from None
        if check and result.exited != 0:
            output = (result.stderr.strip() or result.stdout.strip())[-800:]
            raise SetupError(f"{what or command} failed on {self.address} (exit {result.exited}): {output}")
        return result

    def put(self, local: Path, remote: str) -> None:
        """Copy a file (to a temporary name, then renamed, so a killed copy leaves nothing half-written)."""
        self.conn.put(str(local), remote + ".part")
        self.run(f"mv -f {q(remote + '.part')} {q(remote)}")


# What a node without systemd needs to run the agent and its roles' services from init scripts.
SYSV_TOOLS = ("start-stop-daemon", "update-rc.d", "service")


def detect_init(s: Session) -> str:
    """SYSTEMD when systemd runs as the node's init (/run/systemd/system), else SYSV; kept on the session."""
    s.init_system = SYSTEMD if s.run("test -d /run/systemd/system", check=False).exited == 0 else SYSV
    if s.init_system == SYSV:
        found = s.run("for t in " + " ".join(SYSV_TOOLS) + "; do command -v \"$t\" >/dev/null && echo \"$t\"; done",
                      check=False).stdout.split()
        missing = [tool for tool in SYSV_TOOLS if tool not in found]
        if missing:
            raise SetupError(f"{s.address} does not run systemd, and lacks {', '.join(missing)} to run the agent "
                             "from an init script: install Debian's dpkg and init-system-helpers", field="address")
    return s.init_system


def init_description(init_system: str) -> str:
    """How step 1's result line and the docs name a node's init."""
    if init_system == SYSTEMD:
        return "init: systemd (the agent runs as a systemd unit)"
    return f"init: not systemd, init scripts (the agent runs supervised from {INIT_SCRIPT})"


def step_check_os(s: Session) -> str:
    """Step 1: a supported Debian/Ubuntu, its init (systemd or not), Python 3.10+, sshd allowing UID 0 key login."""
    release = dict(
        line.split("=", 1) for line in s.run("cat /etc/os-release").stdout.splitlines() if "=" in line
    )
    release = {k: v.strip().strip('"') for k, v in release.items()}
    os_id, like = release.get("ID", ""), release.get("ID_LIKE", "")
    version = release.get("VERSION_ID", "0").split(".")[0]
    family = os_id if os_id in SUPPORTED_OS else ("debian" if "debian" in like.split() else None)
    if family is None or (os_id in SUPPORTED_OS and int(version or 0) < SUPPORTED_OS[os_id]):
        raise SetupError(f"{s.address} runs {release.get('PRETTY_NAME', os_id)}; nodes must run Debian 12+ "
                         "or Ubuntu 22.04+", field="address")
    detect_init(s)
    python = s.run("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'", check=False)
    if python.exited != 0:
        raise SetupError(f"{s.address} has no python3: install Debian's python3 first", field="address")
    s.python_version = python.stdout.strip()
    if tuple(int(x) for x in s.python_version.split(".")) < (3, 10):
        raise SetupError(f"{s.address} has Python {s.python_version}; the agent needs 3.10+", field="address")
    conn_info = s.run('echo "$SSH_CONNECTION"').stdout.split()
    client_ip, server_ip, server_port = (conn_info + ["", "", "", ""])[0], conn_info[2], conn_info[3]
    spec = f"user={ADMIN_USER},host={client_ip},addr={client_ip},laddr={server_ip},lport={server_port}"
    effective = s.run(f"/usr/sbin/sshd -T -C {q(spec)}", what="reading sshd's effective configuration (sshd -T)")
    value = next((line.split()[1] for line in effective.stdout.splitlines()
                  if line.lower().startswith("permitrootlogin ")), "prohibit-password")
    if value not in ALLOWED_ROOT_LOGIN:
        raise SetupError(
            f"sshd on {s.address} has `PermitRootLogin {value}` for the master's connections, so the master cannot "
            f"log in as {ADMIN_USER} (UID 0) with its key. Change it to `PermitRootLogin prohibit-password` in "
            "/etc/ssh/sshd_config (or the file in /etc/ssh/sshd_config.d/ that sets it), run "
            f"`{'systemctl reload ssh' if s.init_system == SYSTEMD else 'service ssh reload'}`, then retry",
            field="address",
        )
    return (f"{release.get('PRETTY_NAME', os_id)}, Python {s.python_version}, {init_description(s.init_system)}, "
            f"PermitRootLogin {value}")


def step_create_admin(s: Session) -> str:
    """Step 2: ispmaster, a UID 0 clone of root with home /root (kept if already right)."""
    found = s.run(f"getent passwd {ADMIN_USER}", check=False)
    if found.exited == 0:
        fields_ = found.stdout.strip().split(":")
        if fields_[2:4] != ["0", "0"]:
            raise SetupError(f"{s.address} already has a user {ADMIN_USER} with UID {fields_[2]}, not 0: remove or "
                             "rename it, then retry", field="address")
        outcome = f"{ADMIN_USER} already exists with UID 0"
    else:
        s.run(f"useradd --non-unique --uid 0 --gid 0 --home-dir /root --no-create-home --shell /bin/bash "
              f"--comment {q('Hostfleet master')} {ADMIN_USER}")
        outcome = f"created {ADMIN_USER} (UID 0, GID 0, home /root)"
    # A locked password ('!') makes sshd refuse even key logins when PAM is off; '*' only forbids passwords.
    shadow = s.run(f"getent shadow {ADMIN_USER}", check=False).stdout.split(":")
    if len(shadow) > 1 and shadow[1] != "*":
        s.run(f"usermod -p '*' {ADMIN_USER}")
    return outcome


def step_register_key(s: Session, public_key: str) -> str:
    """Step 3: the master's public key in /root/.ssh/authorized_keys (ispmaster's home is /root)."""
    present = s.run(f"grep -qxF {q(public_key)} /root/.ssh/authorized_keys", check=False).exited == 0
    if present:
        return "the master's key is already in /root/.ssh/authorized_keys"
    s.run(
        "umask 077 && mkdir -p /root/.ssh && touch /root/.ssh/authorized_keys && "
        # A file whose last line has no newline would glue our key onto it.
        "if [ -s /root/.ssh/authorized_keys ] && [ -n \"$(tail -c1 /root/.ssh/authorized_keys)\" ]; "
        "then echo >> /root/.ssh/authorized_keys; fi && "
        f"printf '%s\\n' {q(public_key)} >> /root/.ssh/authorized_keys"
    )
    return "added the master's key to /root/.ssh/authorized_keys"


def step_apt_source(s: Session, line: str) -> str:
    """Step 4: the policy's repository in sources.list.d (nothing extra when the policy is empty)."""
    line = validate_apt_source(line)
    current = s.run(f"cat {APT_LIST}", check=False)
    if not line:
        if current.exited == 0:
            s.run(f"rm -f {APT_LIST}")
            s.run("apt-get -q update", check=False, timeout=300)
            return f"policy node_apt_source is empty: removed {APT_LIST}"
        return "policy node_apt_source is empty: the node keeps its own sources"
    changed = current.stdout.strip() != line
    if changed:
        s.run(f"cat > {APT_LIST}.part && mv -f {APT_LIST}.part {APT_LIST}", input=line + "\n")
    update = s.run("apt-get -q update", check=False, timeout=300, what="apt-get update")
    note = "" if update.exited == 0 else f"; apt-get update reported: {update.stderr.strip()[-300:]}"
    return (f"wrote {APT_LIST}: {line}" if changed else f"{APT_LIST} already holds {line}") + note


def step_install_agent(s: Session, house: Wheelhouse, force: bool = False) -> str:
    """Step 5: python3-venv, the wheelhouse copied over SSH, the agent's venv, its unit or init script."""
    done = []
    if s.run("dpkg -s python3-venv", check=False).exited != 0:
        s.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv", timeout=600,
              what="installing python3-venv from the node's apt sources (policy node_apt_source)")
        done.append("installed python3-venv")
    remote_dir = f"{AGENT_HOME}/wheelhouse/{house.key}"
    s.run(f"install -d -m 0755 {AGENT_HOME} {AGENT_HOME}/wheelhouse {q(remote_dir)}")
    listing = s.run(f"find {q(remote_dir)} -maxdepth 1 -name '*.whl' -printf '%f %s\\n'").stdout.split("\n")
    have = {name: int(size) for name, _, size in (row.partition(" ") for row in listing if row.strip())}
    copied = 0
    for wheel in house.files:
        if have.get(wheel.name) != wheel.stat().st_size:
            s.put(wheel, f"{remote_dir}/{wheel.name}")
            copied += 1
    done.append(f"copied {copied} of {len(house.files)} wheels" if copied else "wheelhouse already on the node")
    # Other wheelhouses are from older agents; keep the node's disk tidy.
    s.run(f"find {AGENT_HOME}/wheelhouse -mindepth 1 -maxdepth 1 -type d ! -name {q(house.key)} "
          "-exec rm -rf {} +", check=False)
    py = f"{AGENT_VENV}/bin/python"
    if s.run(f"{py} -m pip --version", check=False).exited != 0:
        s.run(f"rm -rf {AGENT_VENV} && python3 -m venv {AGENT_VENV}", timeout=300, what="creating the agent's venv")
        done.append("created the venv")
    installed = s.run(f"{py} -c {q(INSTALLED_VERSION)}", check=False).stdout.strip()
    if installed != house.agent_version or force:
        # flock: a setup job killed mid-install may have left a pip running; never run two at once.
        s.run(f"flock {AGENT_HOME}/.install.lock {py} -m pip install -q --disable-pip-version-check --no-index "
              f"--find-links {q(remote_dir)} {'--force-reinstall ' if force else ''}"
              f"{q('hostfleet-agent==' + house.agent_version)}", timeout=600, what="pip install of the agent")
        done.append(f"installed hostfleet-agent {house.agent_version}" + (f" (was {installed})" if installed else ""))
    else:
        done.append(f"hostfleet-agent {installed} already installed")
    service = install_service(s)
    if service:
        done.append(service)
    return "; ".join(done)


def install_service(s: Session) -> str:
    """The agent's systemd unit, or where systemd is not the init its LSB init script enabled at boot."""
    if s.init_system == SYSTEMD:
        unit_path = f"/etc/systemd/system/{AGENT_UNIT}"
        if s.run(f"cat {unit_path}", check=False).stdout != UNIT_TEXT:
            s.run(f"cat > {unit_path}.part && mv -f {unit_path}.part {unit_path} && systemctl daemon-reload",
                  input=UNIT_TEXT)
            s.run(f"systemctl enable {AGENT_UNIT}", check=False)
            return f"wrote {unit_path}"
        s.run(f"systemctl enable {AGENT_UNIT}", check=False)
        return ""
    text = render_init_script()
    wrote = s.run(f"cat {INIT_SCRIPT}", check=False).stdout != text
    if wrote:
        s.run(f"cat > {INIT_SCRIPT}.part && chmod 0755 {INIT_SCRIPT}.part && mv -f {INIT_SCRIPT}.part {INIT_SCRIPT}",
              input=text)
    # defaults makes the rc links once; enable turns them back on if someone disabled them.
    s.run(f"update-rc.d {AGENT_SERVICE} defaults && update-rc.d {AGENT_SERVICE} enable",
          what=f"enabling {INIT_SCRIPT} at boot (update-rc.d)")
    return (f"wrote {INIT_SCRIPT}" if wrote else f"{INIT_SCRIPT} already in place") + ", enabled with update-rc.d " \
        "(the agent runs under its supervisor: no systemd on this node)"


def step_copy_templates(s: Session) -> str:
    """Step 6: the agent's templates on the node are byte for byte the master's."""
    py = f"{AGENT_VENV}/bin/python"
    remote = s.run(f"{py} -c 'import agent.software as s; print(s.TEMPLATES)'").stdout.strip()
    sums = s.run(f"cd {q(remote)} && sha256sum -- *", check=False).stdout
    theirs = {}
    for row in sums.splitlines():
        digest, _, name = row.partition("  ")
        theirs[name.strip()] = digest
    ours = templates_digest()
    differing = [name for name, digest in ours.items() if theirs.get(name) != digest]
    for name in differing:
        s.put(TEMPLATES / name, f"{remote}/{name}")
    if differing:
        return f"copied {len(differing)} of {len(ours)} templates: {', '.join(differing)}"
    return f"all {len(ours)} templates already match the master's"


def step_configure_agent(s: Session, node: Node, secret: str) -> tuple[str, str]:
    """Step 7: the master's secret (0600), `agent init` (config 0600, certificate), the service running."""
    s.run(f"install -d -m 0700 {AGENT_ETC} {AGENT_STATE}")
    wanted = hashlib.sha256((secret + "\n").encode()).hexdigest()
    current = s.run(f"sha256sum {AGENT_SECRET}", check=False).stdout.split(" ")[0]
    notes = []
    if current != wanted:
        s.run(f"umask 077 && cat > {AGENT_SECRET}.part && mv -f {AGENT_SECRET}.part {AGENT_SECRET}",
              input=secret + "\n")
        notes.append("wrote the master's secret (0600)")
    args = [
        f"{AGENT_VENV}/bin/python", "-m", "agent", "init", "--config", AGENT_CONFIG, "--root", "/",
        "--state-dir", AGENT_STATE, "--listen", f"0.0.0.0:{node.agent_port}", "--secret-file", AGENT_SECRET,
        "--roles", ",".join(node.roles or []), "--hostname", node.name, "--log-file", AGENT_LOG,
        "--init-system", s.init_system,
    ]
    if _is_ip(node.address):
        args += ["--address", node.address]
    else:
        args += ["--hostname", node.address]
    for service, command in sorted(reload_commands(s.init_system).items()):
        args += ["--reload-command", f"{service}={command}"]
    before = s.run(f"sha256sum {AGENT_CONFIG}", check=False).stdout.split(" ")[0]
    result = s.run(" ".join(q(a) for a in args), what="agent init")
    fingerprint = json.loads(result.stdout)["fingerprint"]
    after = s.run(f"sha256sum {AGENT_CONFIG}").stdout.split(" ")[0]
    version = s.run(f"{AGENT_VENV}/bin/python -c {q(INSTALLED_VERSION)}").stdout.strip()
    # Restart only when something the running agent read has changed: a no-op re-run must not bounce it.
    applied = hashlib.sha256(f"{after}:{wanted}:{version}".encode()).hexdigest()
    marker = f"{AGENT_STATE}/.applied"
    if s.init_system == SYSTEMD:
        active = s.run(agent_control(SYSTEMD, "is-active"), check=False).stdout.strip() == "active"
    else:
        active = s.run(agent_control(SYSV, "status"), check=False).exited == 0
    recorded = s.run(f"cat {marker}", check=False).stdout.strip()
    if not active or current != wanted or before != after or recorded != applied:
        s.run(agent_control(s.init_system, "restart"), what="starting the agent")
        s.run(f"printf '%s\\n' {q(applied)} > {marker}")
        notes.append("(re)started the agent")
    else:
        notes.append("the agent already runs this configuration")
    return fingerprint, "; ".join(notes) + f"; certificate fingerprint {fingerprint[:16]}..."


def wait_for_agent(node: Node, secret: str, fingerprint: str, timeout: float = AGENT_WAIT_S) -> dict:
    """Poll the new agent with signed, pinned requests until it answers; return its stats (checked)."""
    client = AgentClient(node.agent_url, secret, fingerprint, timeout=(3.05, 10))
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return read_stats(client)
            except AgentError as exc:
                if exc.kind not in ("unreachable", "timeout") or time.monotonic() > deadline:
                    raise SetupError(f"the agent on {node.address} does not answer the master: {exc}") from None
                time.sleep(0.5)
    finally:
        client.close()


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def build_and_install(s: Session, house: list[Wheelhouse], data_dir: Path) -> str:
    built = build_wheelhouse(wheelhouse_dir(data_dir), s.python_version)
    house.append(built)
    return step_install_agent(s, built)


def wheelhouse_dir(data_dir: Path) -> Path:
    """The wheelhouse cache: HOSTFLEET_WHEELHOUSE, else <data dir>/wheelhouse."""
    return Path(current_app.config.get("WHEELHOUSE_DIR") or os.environ.get("HOSTFLEET_WHEELHOUSE")
                or Path(data_dir) / "wheelhouse")


def copy_templates_over_ssh(node: Node) -> str:
    """Step 6 on its own (the templates synchronizer), as ispmaster with the master's key."""
    data_dir = Path(current_app.config["DATA_DIR"])
    conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                      expected_fingerprint=node.host_key_fingerprint)
    try:
        return step_copy_templates(Session(conn, node.address, lambda _line: None))
    finally:
        conn.close()
