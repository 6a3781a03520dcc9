"""Adding a node over SSH: host-key pinning, the root bootstrap and the 8 setup steps (SPEC §3.1).

The root password or private key is used once, in `bootstrap` (steps 1-3 as root, in the
process that received it), and is never stored or logged. Every later connection, the setup
job included, logs in as `ispmaster` with the master's own ed25519 key, and verifies the node's
host key against the fingerprint pinned at first use. Every step reads the node's current
state first and changes only what differs, so re-running the job finishes a half-set-up node.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import json
import os
import re
import secrets
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fabric
import paramiko
from flask import current_app
from sqlalchemy.exc import IntegrityError

from agent import validation
from agent.client import AgentClient, AgentError
from agent.software import TEMPLATES, templates_digest
from agent.stats import ROLE_PACKAGES
from app.extensions import db
from app.models import Node, NodeState, Operation, OperationStatus
from app.queues import redis_connection
from app.services import nodes as node_service
from app.services import operations
from app.services.desyncs import register_all
from app.services.policies import get_policy
from app.services.wheelhouse import Wheelhouse, build_wheelhouse

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
ALLOWED_ROOT_LOGIN = ("yes", "prohibit-password", "without-password")
SSH_TIMEOUT_S = 10
AGENT_WAIT_S = 45
LOCK_TTL_S = 20
SUPPORTED_OS = {"debian": 12, "ubuntu": 22}
INSTALLED_VERSION = "import importlib.metadata as m; print(m.version('hostfleet-agent'))"
NODE_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
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


INIT_SCRIPT_TEMPLATE = r"""#!/bin/sh
### BEGIN INIT INFO
# Provides:          hostfleet-agent
# Required-Start:    $network $remote_fs $syslog
# Required-Stop:     $network $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Hostfleet node agent
# Description:       Serves the Hostfleet master's signed HTTPS requests; a supervisor
#                    restarts it whenever it exits (as Restart=always does under systemd).
### END INIT INFO
# Written by the Hostfleet master at node setup; rewritten on every setup and agent update.

NAME=hostfleet-agent
PYTHON=@PYTHON@
CONFIG=@CONFIG@
LOG=@LOG@
CONSOLE_LOG=@CONSOLE_LOG@
PIDFILE=@PIDFILE@
AGENT_PIDFILE=@AGENT_PIDFILE@
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

note() {
    echo "$(date '+%Y-%m-%d %H:%M:%S') $NAME supervisor: $*" >>"$LOG"
}

uptime_s() {
    cut -d. -f1 /proc/uptime
}

# The supervisor: runs the agent, restarts it when it exits (2 s, doubling up to 60 s while it keeps
# failing within a minute of its start), and stops it when it is told to stop.
on_stop() {
    stopping=1
    if [ -n "$child" ]; then
        kill -s TERM "$child" 2>/dev/null
    fi
    if [ -n "$pause" ]; then
        kill "$pause" 2>/dev/null
    fi
}

supervise() {
    stopping=
    child=
    pause=
    trap on_stop TERM INT HUP
    delay=2
    note "started (pid $$)"
    while [ -z "$stopping" ]; do
        started=$(uptime_s)
        "$PYTHON" -m agent serve --config "$CONFIG" </dev/null >>"$CONSOLE_LOG" 2>&1 &
        child=$!
        echo "$child" >"$AGENT_PIDFILE"
        status=0
        wait "$child" || status=$?
        # A trapped signal interrupts wait while the agent may still be shutting down.
        while kill -s 0 "$child" 2>/dev/null; do
            wait "$child" || status=$?
        done
        child=
        rm -f "$AGENT_PIDFILE"
        [ -n "$stopping" ] && break
        if [ $(( $(uptime_s) - started )) -ge 60 ]; then
            delay=2
        fi
        note "the agent exited (status $status); restarting it in $delay s"
        sleep "$delay" &
        pause=$!
        wait "$pause" 2>/dev/null
        pause=
        delay=$(( delay * 2 ))
        if [ "$delay" -gt 60 ]; then
            delay=60
        fi
    done
    note "stopped"
}

do_start() {
    if start-stop-daemon --status --pidfile "$PIDFILE" --exec /bin/sh; then
        echo "$NAME is already running"
        return 0
    fi
    # The logs are the agent's alone (0600); everything else gets systemd's default umask, as under
    # the unit: the agent makes the sites' folders, which nginx's workers must be able to read.
    (umask 077 && : >>"$LOG" && : >>"$CONSOLE_LOG")
    umask 022
    start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$PIDFILE" \
        --exec /bin/sh -- "$0" supervise
}

do_stop() {
    start-stop-daemon --stop --quiet --oknodo --retry TERM/15/KILL/5 --pidfile "$PIDFILE" --exec /bin/sh
    status=$?
    # A supervisor that had to be killed leaves its agent behind.
    start-stop-daemon --stop --quiet --oknodo --retry TERM/10/KILL/5 --pidfile "$AGENT_PIDFILE" \
        --exec "$PYTHON" >/dev/null 2>&1
    rm -f "$PIDFILE" "$AGENT_PIDFILE"
    return "$status"
}

case "$1" in
    start)
        echo "Starting $NAME"
        do_start
        ;;
    stop)
        echo "Stopping $NAME"
        do_stop
        ;;
    restart|force-reload)
        echo "Restarting $NAME"
        do_stop && do_start
        ;;
    status)
        start-stop-daemon --status --pidfile "$PIDFILE" --exec /bin/sh
        status=$?
        if [ "$status" -eq 0 ] && [ -s "$AGENT_PIDFILE" ] && kill -s 0 "$(cat "$AGENT_PIDFILE")" 2>/dev/null; then
            echo "$NAME is running (supervisor $(cat "$PIDFILE"), agent $(cat "$AGENT_PIDFILE"))"
        elif [ "$status" -eq 0 ]; then
            echo "$NAME supervisor is running (pid $(cat "$PIDFILE")); the agent is being restarted"
        else
            echo "$NAME is not running"
        fi
        exit "$status"
        ;;
    supervise)
        supervise
        ;;
    *)
        echo "Usage: $0 {start|stop|restart|force-reload|status}" >&2
        exit 3
        ;;
esac
"""
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


class SetupError(Exception):
    """A setup step or connection failed; `field` names the input at fault for forms and the API."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422, step: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.step = step


class InputErrors(Exception):
    """Bad input for a new node: {field: why}."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class HostKeyMismatch(paramiko.SSHException):
    """The node presented another host key than the pinned one."""

    def __init__(self, expected: str, got: str):
        super().__init__(f"host key {got} does not match the pinned {expected}")
        self.expected = expected
        self.got = got


# ---------------------------------------------------------------------------------------------
# Input

@dataclass
class NodeInput:
    """A validated request to add a node (the credential is kept only for the bootstrap)."""

    name: str
    address: str
    ssh_port: int = 22
    roles: list[str] = field(default_factory=list)
    weight: int = 100
    password: str | None = field(default=None, repr=False)
    private_key: paramiko.PKey | None = field(default=None, repr=False)
    host_key_fingerprint: str | None = None


def validate_node_input(data: dict, *, require_credentials: bool = True, require_fingerprint: bool = True) -> NodeInput:
    """Check every field of a new node; raise InputErrors naming each bad field.

    With the credential, the host key fingerprint is required too (unless `require_fingerprint` is
    off): trusting whatever key answers first would hand root's password to whoever answers first."""
    errors: dict[str, str] = {}

    def check(name: str, func: Callable[[], object]) -> object:
        try:
            return func()
        except validation.ValidationError as exc:
            errors[name] = exc.message
            return None

    name = check("name", lambda: _node_name(data.get("name")))
    address = check("address", lambda: _address(data.get("address")))
    port = check("ssh_port", lambda: validation.port(_int_or_raw(data.get("ssh_port", 22)), "ssh_port"))
    roles = check("roles", lambda: _roles(data.get("roles", [])))
    weight = check("weight", lambda: validation.integer(_int_or_raw(data.get("weight", 100)), "weight", 1, 1000))
    fingerprint = check("host_key_fingerprint", lambda: _fingerprint(data.get("host_key_fingerprint")))
    password = data.get("password") or None
    key_text = data.get("private_key") or None
    pkey = None
    if require_credentials and require_fingerprint and not fingerprint and "host_key_fingerprint" not in errors:
        errors["host_key_fingerprint"] = (
            "required: the node's SSH host key fingerprint (SHA256:..., as `ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub` prints it on the node)"
        )
    if require_credentials:
        if password and key_text:
            errors["password"] = "give the root password or a private key, not both"
        elif not password and not key_text:
            missing = "private_key" if "private_key" in data and "password" not in data else "password"
            errors[missing] = "the root password (or a private key) is needed once to set the node up"
        elif password:
            password = check("password", lambda: validation.text(password, "password", 1024, empty=False))
        else:
            pkey = check("private_key", lambda: parse_private_key(key_text))
    if name and not errors.get("name") and db.session.scalar(db.select(Node.id).where(Node.name == name)):
        errors["name"] = f"a node named {name} already exists"
    if address and not errors.get("address"):
        held = _held_by_a_customer(address)
        if held:
            errors["address"] = held
    if address and port and not errors.get("address"):
        other = db.session.scalar(db.select(Node.name).where(Node.address == address, Node.ssh_port == port))
        if other:
            errors["address"] = f"node {other} is already this server ({address} port {port})"
    if errors:
        raise InputErrors(errors)
    return NodeInput(name=name, address=address, ssh_port=port, roles=roles, weight=weight, password=password,
                     private_key=pkey, host_key_fingerprint=fingerprint)


def _held_by_a_customer(address: str) -> str | None:
    """Why a node may not take this address: a host name that a customer holds, is above or is below in
    the name registry (the nodes' names are refused to customers only from when the node exists, so a
    name a customer took first would stay theirs, and the cluster's name servers answer it their way)."""
    from app.models import User, UserLevel
    from app.services import names

    try:
        ipaddress.ip_address(address)
        return None
    except ValueError:
        pass
    found = names.holders(address)
    if not found:
        return None
    admins = set(db.session.scalars(db.select(User.id).where(User.id.in_({h.owner_id for h in found}),
                                                             User.level == UserLevel.ADMIN.value)))
    customers = sorted((h for h in found if h.owner_id not in admins), key=lambda h: len(h.name))
    if not customers:
        return None
    return (f"{address} is, is above or is below {customers[0].describe()}: a node's host name is not a customer's; "
            "move that name away (or give the node another name) first")


def _int_or_raw(value: object) -> object:
    """Form fields arrive as strings; the API's JSON integers pass through."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 7:
        return int(value.strip())
    return value


def _node_name(value: object) -> str:
    value = validation.text(value, "name", 63, empty=False)
    if not NODE_NAME_RE.fullmatch(value):
        raise validation.ValidationError("name", "lower-case letters, digits and inner hyphens, at most 63")
    return value


def _address(value: object) -> str:
    value = validation.text(value, "address", 253, empty=False).strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value):
        raise validation.ValidationError("address", "not a valid IPv4 address")
    return validation.domain_name(value, "address")


def _roles(value: object) -> list[str]:
    if not isinstance(value, list):
        raise validation.ValidationError("roles", "must be a list of roles")
    roles: list[str] = []
    for item in value:
        role = validation.choice(item, "roles", sorted(ROLE_PACKAGES))
        if role not in roles:
            roles.append(role)
    return roles


def _fingerprint(value: object) -> str | None:
    if value in (None, ""):
        return None
    value = validation.text(value, "host_key_fingerprint", 128).strip()
    if not FINGERPRINT_RE.fullmatch(value):
        raise validation.ValidationError("host_key_fingerprint", "expected SHA256: and 43 base64 characters")
    return value


def parse_private_key(text: object) -> paramiko.PKey:
    """An OpenSSH or PEM private key (ed25519, ECDSA or RSA), unencrypted."""
    if not isinstance(text, str) or len(text) > 16384:
        raise validation.ValidationError("private_key", "must be a private key in OpenSSH or PEM format")
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text.strip() + "\n"))
        except paramiko.PasswordRequiredException:
            raise validation.ValidationError("private_key", "the key is encrypted; give an unencrypted key") from None
        except (paramiko.SSHException, ValueError, IndexError, TypeError):
            continue
    raise validation.ValidationError("private_key", "not a private key in OpenSSH or PEM format")


def validate_apt_source(line: str) -> str:
    """The policy's `deb` line: one line, `deb [options] URI suite [components]`."""
    line = validation.text(line or "", "node_apt_source", 1024).strip()
    if line and not re.fullmatch(r"deb(\s+\[[^\]\n]*\])?\s+\S+\s+\S+(\s+\S+)*", line):
        raise validation.ValidationError("node_apt_source", "must be one `deb URI suite [components]` line")
    return line


# ---------------------------------------------------------------------------------------------
# SSH: the master's key, host keys, connections

def master_key_path(data_dir: Path) -> Path:
    """Where the master's SSH private key lives (mode 0600)."""
    return Path(data_dir) / "ssh" / "id_ed25519"


def master_key(data_dir: Path) -> paramiko.Ed25519Key:
    """The master's ed25519 SSH key, generated once in the data dir."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = master_key_path(data_dir)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            # link() fails if another process made the key first: theirs wins, everywhere.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = paramiko.Ed25519Key.from_private_key_file(str(path))
    pub = path.with_suffix(".pub")
    line = f"{key.get_name()} {key.get_base64()} hostfleet-master\n"
    if not pub.exists() or pub.read_text() != line:
        pub.write_text(line)
    return key


def master_public_key(data_dir: Path) -> str:
    """The authorized_keys line of the master's key."""
    key = master_key(data_dir)
    return f"{key.get_name()} {key.get_base64()} hostfleet-master"


def fingerprint_of(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of a public key (SHA256:base64, no padding)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _unreachable(address: str, port: int, exc: BaseException) -> SetupError:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(exc, socket.timeout | TimeoutError):
        reason = f"no answer within {SSH_TIMEOUT_S} s"
    return SetupError(
        f"cannot reach {address} port {port} over SSH ({reason}): check the address, the SSH port, "
        "that the node is up and that sshd runs there",
        field="address",
    )


def fetch_host_key(address: str, port: int, timeout: float = SSH_TIMEOUT_S) -> tuple[str, str]:
    """Connect without logging in; return the node's host key type and fingerprint."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise _unreachable(address, port, exc) from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return key.get_name(), fingerprint_of(key)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise _unreachable(address, port, exc) from None
    finally:
        transport.close()


class PinnedHostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Accept the node's host key only if it matches the pin; with no pin, record it (first use)."""

    def __init__(self, expected: str | None):
        self.expected = expected
        self.seen: str | None = None

    def missing_host_key(self, client, hostname, key):
        self.seen = fingerprint_of(key)
        if self.expected and self.seen != self.expected:
            raise HostKeyMismatch(self.expected, self.seen)


def host_key_changed(address: str, expected: str, got: str) -> SetupError:
    """The clear error for a node whose SSH host key is not the pinned one."""
    return SetupError(
        f"the SSH host key of {address} changed: the panel pinned {expected}, the node now shows {got}. "
        "If the node was reinstalled on purpose, remove it from the panel and add it again; otherwise "
        "treat this as a possible interception and check the node before trusting it",
        field="host_key_fingerprint",
        status=409,
    )


def connect(address: str, port: int, user: str, *, password: str | None = None, pkey: paramiko.PKey | None = None,
            expected_fingerprint: str | None = None) -> tuple[fabric.Connection, str]:
    """An open Fabric connection whose host key matched the pin; returns it and the fingerprint."""
    config = fabric.Config(
        ssh_config=paramiko.SSHConfig(),
        overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True, "in_stream": False}},
    )
    connect_kwargs: dict = {"look_for_keys": False, "allow_agent": False, "banner_timeout": SSH_TIMEOUT_S,
                            "auth_timeout": 20}
    if password is not None:
        connect_kwargs["password"] = password
    if pkey is not None:
        connect_kwargs["pkey"] = pkey
    conn = fabric.Connection(address, user=user, port=port, config=config, connect_timeout=SSH_TIMEOUT_S,
                             connect_kwargs=connect_kwargs)
    policy = PinnedHostKeyPolicy(expected_fingerprint)
    conn.client.set_missing_host_key_policy(policy)
    try:
        conn.open()
    except HostKeyMismatch as exc:
        conn.close()
        raise host_key_changed(address, exc.expected, exc.got) from None
    except paramiko.AuthenticationException:
        conn.close()
        if user == "root":
            which = "password" if password is not None else "private_key"
            raise SetupError(
                f"{address} refused the root login: the {'password' if which == 'password' else 'key'} is wrong, "
                "or sshd does not let root log in (PermitRootLogin no). Check the credential; on the node, set "
                "`PermitRootLogin prohibit-password` (or `yes` while adding it) in /etc/ssh/sshd_config and run "
                "`systemctl reload ssh`",
                field=which,
            ) from None
        raise SetupError(
            f"{address} refused the master's key for {user}: its authorized_keys no longer holds the key, or sshd "
            "forbids key logins for UID 0 (PermitRootLogin must be prohibit-password or yes). Check "
            "/root/.ssh/authorized_keys and sshd's PermitRootLogin on the node",
            field="address",
        ) from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        conn.close()
        raise _unreachable(address, port, exc) from None
    return conn, policy.seen or expected_fingerprint or ""


# ---------------------------------------------------------------------------------------------
# The steps

q = shlex.quote


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
    from app.services.collector import read_stats

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


# ---------------------------------------------------------------------------------------------
# The bootstrap (at submission, with the root credential) and the setup job

def bootstrap(data: NodeInput, data_dir: Path, log: Callable[[str], None]) -> str:
    """Steps 1-3 as root with the given credential (used here only); returns the pinned host key fingerprint."""
    conn, fingerprint = connect(data.address, data.ssh_port, "root", password=data.password,
                                pkey=data.private_key, expected_fingerprint=data.host_key_fingerprint)
    log(f"connected to {data.address}:{data.ssh_port} as root; host key {fingerprint}")
    try:
        s = Session(conn, data.address, log)
        log(f"step 1/8 {STEPS[0]}: {step_check_os(s)}")
        log(f"step 2/8 {STEPS[1]}: {step_create_admin(s)}")
        log(f"step 3/8 {STEPS[2]}: {step_register_key(s, master_public_key(data_dir))}")
    except SetupError:
        raise
    except Exception as exc:  # noqa: BLE001 - an odd answer from the node is its error, never a 500
        raise SetupError(f"{data.address} answered unexpectedly during steps 1-3: {type(exc).__name__}: {exc}",
                         field="address") from None
    finally:
        conn.close()
    # Proves the next connections work before the credential is forgotten.
    check, _ = connect(data.address, data.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                       expected_fingerprint=fingerprint)
    try:
        uid = Session(check, data.address, log).run("id -u").stdout.strip()
    finally:
        check.close()
    if uid != "0":
        raise SetupError(f"{ADMIN_USER} on {data.address} logged in with UID {uid}, not 0", field="address")
    log(f"the master's key logs in as {ADMIN_USER} (UID 0); the root credential is no longer needed")
    return fingerprint


def add_node(data: NodeInput, *, user_id: int | None, data_dir: Path) -> tuple[Node, Operation]:
    """Bootstrap the node over SSH, then record it and start its setup job; nothing is stored on failure."""
    lines: list[str] = []
    fingerprint = bootstrap(data, data_dir, lines.append)
    data.password = data.private_key = None
    node = node_service.create_node(
        data.name, data.address, roles=data.roles, weight=data.weight, ssh_port=data.ssh_port,
        agent_port=AGENT_PORT, host_key_fingerprint=fingerprint, setup_pending=True, setup_step=1,
        reason=f"added over SSH; host key {fingerprint} pinned",
    )
    try:
        db.session.commit()
    except IntegrityError:
        # Another request added a node with this name while this one was bootstrapping.
        db.session.rollback()
        raise InputErrors({"name": f"a node named {data.name} already exists"}) from None
    operation = start_setup(node, user_id=user_id, preface=lines)
    return node, operation


def start_setup(node: Node, *, user_id: int | None, preface: list[str] | None = None) -> Operation:
    """Start (or restart) the setup job of a node; refused while another one holds its lock."""
    if setup_lock_holder(node.id):
        raise SetupError(f"a setup job for {node.name} is running; wait for it to finish", status=409)
    previous = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    if previous is not None and not previous.op_status.finished:
        operations.finish(previous, OperationStatus.FAILED, "interrupted: the worker running it stopped")
    # The bootstrap's lines go in with the job (it writes them first): appending them here could
    # race the job's own appends to the same log.
    operation = operations.start_operation(
        "node_setup", f"Set up node {node.name}", "setup_node", user_id=user_id, targets=[node],
        params={"node_id": node.id, "preface": list(preface or [])}, job_timeout=3600,
    )
    node.setup_operation_id = operation.id
    db.session.commit()
    return operation


def _lock_key(node_id: int) -> str:
    return f"hostfleet:setup-lock:{node_id}"


def setup_lock_holder(node_id: int) -> str | None:
    """The token of the job holding the node's setup lock, if one is alive."""
    value = redis_connection().get(_lock_key(node_id))
    return value.decode() if value else None


class SetupLock:
    """A per-node lock with a short TTL that a heartbeat thread keeps alive; a killed job frees it fast."""

    def __init__(self, node_id: int):
        self.redis = redis_connection()
        self.key = _lock_key(node_id)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SetupLock:
        if not self.redis.set(self.key, self.token, nx=True, ex=LOCK_TTL_S):
            raise SetupError("another setup job is running for this node", status=409)
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(LOCK_TTL_S / 4):
            if self.redis.get(self.key) == self.token.encode():
                self.redis.expire(self.key, LOCK_TTL_S)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.redis.get(self.key) == self.token.encode():
            self.redis.delete(self.key)


def run_setup(operation: Operation) -> None:
    """The setup job's body: steps 1-8 as ispmaster, then the role synchronizer."""
    node = db.session.get(Node, operation.params["node_id"])
    if node is None:
        operations.finish(operation, OperationStatus.FAILED, "the node was removed")
        return
    operations.mark_running(operation)
    preface = operation.params.get("preface") or []
    if preface and not (operation.log or "").strip():
        operations.append_log(operation, "\n".join(preface))
    try:
        with SetupLock(node.id):
            _run_steps(operation, node)
    except SetupError as exc:
        db.session.rollback()
        fail_setup(operation, node, exc)
        return
    from app.services.roles import start_roles

    start_roles(node, operation)


def fail_setup(operation: Operation, node: Node, exc: SetupError) -> None:
    """Put the node in `error` with the failing step and its message; the operation failed."""
    step = exc.step or node.setup_step
    title = f"step {step}/8 ({STEPS[step - 1]})" if step else "setup"
    node.setup_error = exc.message
    node_service.change_state(node, NodeState.ERROR, f"{title} failed: {exc.message}")
    db.session.commit()
    operations.append_log(operation, f"FAILED {title}: {exc.message}")
    operations.set_node_outcome(operation, node.id, _outcome("failed"), exc.message)
    operations.finish(operation, OperationStatus.FAILED, f"{title} failed: {exc.message}")


def _outcome(name: str):
    from app.models import NodeOutcome

    return NodeOutcome(name)


def _run_steps(operation: Operation, node: Node) -> None:
    data_dir = Path(current_app.config["DATA_DIR"])
    log = lambda line: operations.append_log(operation, line)  # noqa: E731
    node_service.change_state(node, NodeState.CONNECTING, "setup job: connecting over SSH")
    node.setup_error = None
    db.session.commit()
    conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                      expected_fingerprint=node.host_key_fingerprint)
    s = Session(conn, node.address, log)
    try:
        def step(number: int, func: Callable[[], str]) -> None:
            node.setup_step = number
            db.session.commit()
            log(f"step {number}/8 {STEPS[number - 1]}: running")
            try:
                outcome = func()
            except SetupError as exc:
                exc.step = number
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of a step must end as a clear error
                raise SetupError(f"{type(exc).__name__}: {exc}", step=number) from None
            log(f"step {number}/8 {STEPS[number - 1]}: done: {outcome}")

        step(1, lambda: step_check_os(s))
        step(2, lambda: step_create_admin(s))
        step(3, lambda: step_register_key(s, master_public_key(data_dir)))
        step(4, lambda: step_apt_source(s, get_policy().node_apt_source))
        house: list[Wheelhouse] = []
        step(5, lambda: _install(s, house, data_dir))
        step(6, lambda: step_copy_templates(s))
        if not node.agent_secret:
            # Generated by the master, kept in its database; written to the node over SSH only.
            node.agent_secret = secrets.token_hex(32)
            db.session.commit()

        def configure() -> str:
            fingerprint, message = step_configure_agent(s, node, node.agent_secret)
            node.cert_fingerprint = fingerprint
            db.session.commit()
            stats = wait_for_agent(node, node.agent_secret, fingerprint)
            return message + f"; the agent answers signed requests (agent {stats.get('agent_version')}, " \
                             f"API {stats.get('api_version')})"

        step(7, configure)

        def register() -> str:
            names = register_all(node)
            node.setup_pending = False
            node.setup_step = None
            db.session.commit()
            return ", ".join(names)

        step(8, register)
    finally:
        conn.close()


def _install(s: Session, house: list[Wheelhouse], data_dir: Path) -> str:
    built = build_wheelhouse(wheelhouse_dir(data_dir), s.python_version)
    house.append(built)
    return step_install_agent(s, built)


def wheelhouse_dir(data_dir: Path) -> Path:
    """The wheelhouse cache: HOSTFLEET_WHEELHOUSE, else <data dir>/wheelhouse."""
    return Path(current_app.config.get("WHEELHOUSE_DIR") or os.environ.get("HOSTFLEET_WHEELHOUSE")
                or Path(data_dir) / "wheelhouse")


def update_agent(operation: Operation) -> None:
    """One-click agent update: reinstall the master's agent and templates over SSH, restart, poll it."""
    node = db.session.get(Node, operation.params["node_id"])
    if node is None:
        operations.finish(operation, OperationStatus.FAILED, "the node was removed")
        return
    operations.mark_running(operation)
    data_dir = Path(current_app.config["DATA_DIR"])
    log = lambda line: operations.append_log(operation, line)  # noqa: E731
    try:
        with SetupLock(node.id):
            conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                              expected_fingerprint=node.host_key_fingerprint)
            try:
                s = Session(conn, node.address, log)
                log(f"step 1/8: {step_check_os(s)}")
                house = build_wheelhouse(wheelhouse_dir(data_dir), s.python_version)
                log(f"step 5/8: {step_install_agent(s, house, force=True)}")
                log(f"step 6/8: {step_copy_templates(s)}")
                s.run(agent_control(s.init_system, "restart"), what="restarting the agent")
                stats = wait_for_agent(node, node.agent_secret, node.cert_fingerprint)
            finally:
                conn.close()
    except SetupError as exc:
        db.session.rollback()
        log(f"FAILED: {exc.message}")
        operations.set_node_outcome(operation, node.id, _outcome("failed"), exc.message)
        operations.finish(operation, OperationStatus.FAILED, exc.message)
        return
    from app.services.collector import record_poll_success

    record_poll_success(node, stats)
    db.session.commit()
    log(f"the agent answers: version {stats.get('agent_version')}, API {stats.get('api_version')}; "
        f"node is {node.state}")
    operations.set_node_outcome(operation, node.id, _outcome("applied"))
    operations.finish(operation, OperationStatus.SUCCEEDED, f"agent updated to {house.agent_version}")


def start_update_agent(node: Node, *, user_id: int | None) -> Operation:
    """Start the one-click agent update of a node (refused while its setup job runs)."""
    if node.is_local:
        raise SetupError("the local node's agent is the panel's own code: update the panel instead", status=409)
    if node.setup_pending:
        raise SetupError(f"{node.name} is not set up yet: retry its setup instead", status=409)
    if setup_lock_holder(node.id):
        raise SetupError(f"a setup job for {node.name} is running; wait for it to finish", status=409)
    return operations.start_operation("node_update_agent", f"Update the agent on {node.name}", "update_agent",
                                      user_id=user_id, targets=[node], params={"node_id": node.id}, job_timeout=1800)


def can_retry(node: Node) -> bool:
    """Retry is offered for a node in `error`, or whose setup job died without finishing."""
    if node.is_local:
        return False
    if node.state == NodeState.ERROR.value:
        return True
    if not node.setup_pending:
        return False
    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    return setup_lock_holder(node.id) is None and (operation is None or operation.status != "queued")


def retry_node(node: Node, *, user_id: int | None) -> Operation:
    """Re-run what failed: the setup job while setup is unfinished, else the role synchronizer."""
    from app.services.roles import retry_roles

    if not can_retry(node):
        raise SetupError(f"{node.name} is {node.state}; there is nothing to retry", status=409)
    if node.setup_pending:
        return start_setup(node, user_id=user_id)
    return retry_roles(node, user_id=user_id)


def copy_templates_over_ssh(node: Node) -> str:
    """Step 6 on its own (the templates synchronizer), as ispmaster with the master's key."""
    data_dir = Path(current_app.config["DATA_DIR"])
    conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=master_key(data_dir),
                      expected_fingerprint=node.host_key_fingerprint)
    try:
        return step_copy_templates(Session(conn, node.address, lambda _line: None))
    finally:
        conn.close()


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


def decommission(node: Node) -> tuple[bool, str]:
    """Best effort at removal: take the agent, the master's key and ispmaster off the node over SSH.

    Never raises: returns (done, what happened); when the node cannot be reached the message says
    what to run on it by hand, so a removed server never keeps a listening agent or a key unknowingly.
    """
    by_hand = (f"on {node.address}, as root: systemctl disable --now {AGENT_UNIT} (on a node without systemd: "
               f"service {AGENT_SERVICE} stop; rm -f {INIT_SCRIPT}; update-rc.d {AGENT_SERVICE} remove); "
               f"rm -rf {AGENT_HOME} "
               f"{AGENT_ETC} {AGENT_STATE} {APT_LIST}; sed -i '/ hostfleet-master$/d' /root/.ssh/authorized_keys; "
               f"userdel -f {ADMIN_USER}")
    if not node.host_key_fingerprint:
        return False, f"{node.name} was never reached over SSH, so nothing was installed by the panel"
    try:
        key = master_key(Path(current_app.config["DATA_DIR"]))
        conn, _ = connect(node.address, node.ssh_port, ADMIN_USER, pkey=key,
                          expected_fingerprint=node.host_key_fingerprint)
    except SetupError as exc:
        return False, f"the agent could not be removed from {node.name} ({exc.message}); {by_hand}"
    try:
        Session(conn, node.address, lambda _line: None).run(
            DECOMMISSION_SCRIPT, timeout=DECOMMISSION_TIMEOUT_S, what="removing the agent")
    except SetupError as exc:
        return False, f"removing the agent from {node.name} failed ({exc.message}); {by_hand}"
    finally:
        conn.close()
    return True, (f"on {node.address}: the agent was stopped and removed, and the master's key and {ADMIN_USER} "
                  "were taken off; its sites, zones and mail were left as they are")


def setup_steps(node: Node) -> list[dict]:
    """The 8 steps with their status as the node page and the API show them."""
    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    running = operation is not None and operation.status == OperationStatus.RUNNING.value
    current = node.setup_step or (0 if node.setup_pending else len(STEPS) + 1)
    steps = []
    for n, title in enumerate(STEPS, start=1):
        if n < current:
            status = "done"
        elif n == current:
            status = "failed" if node.state == NodeState.ERROR.value else ("running" if running else "pending")
        else:
            status = "pending"
        steps.append({"n": n, "title": title, "status": status})
    return steps


def setup_to_dict(node: Node) -> dict:
    """The node's setup progress and software installation, for the API."""
    from flask import url_for

    operation = db.session.get(Operation, node.setup_operation_id) if node.setup_operation_id else None
    return {
        "node_id": node.id,
        "state": node.state,
        "pending": node.setup_pending,
        "steps": setup_steps(node),
        "error": node.setup_error,
        "operation": None if operation is None else {
            "id": operation.id, "status": operation.status,
            "url": url_for("api.get_operation", operation_id=operation.id),
        },
        "software": (node.stats or {}).get("software"),
        "can_retry": can_retry(node),
    }
