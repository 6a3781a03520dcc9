"""An SSH server on loopback (paramiko's server side) in front of a fake node that understands the setup's commands."""

from __future__ import annotations

import re
import shlex
import socket
import threading
from dataclasses import dataclass, field

import paramiko

from tests.conftest import free_port


@dataclass
class FakeNode:
    """The state of a node as steps 1-4 see it, and every command they ran."""

    root_password: str = "root password"
    authorized: list[str] = field(default_factory=list)  # authorized_keys lines
    users: dict[str, tuple[int, int, str]] = field(default_factory=lambda: {"root": (0, 0, "/root")})
    shadow: dict[str, str] = field(default_factory=lambda: {"root": "$y$hash"})
    files: dict[str, str] = field(default_factory=dict)
    permit_root_login: str = "yes"
    os_release: str = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    commands: list[str] = field(default_factory=list)
    systemd: bool = True  # False: a node whose init is not systemd (init scripts)
    sysv_tools: tuple[str, ...] = ("start-stop-daemon", "update-rc.d", "service")
    auth_attempts: list[tuple[str, str]] = field(default_factory=list)

    def run(self, command: str, stdin: str) -> tuple[int, str, str]:
        """Answer one command like the node's shell would."""
        self.commands.append(command)
        words = shlex.split(command) if "'" in command or '"' in command else command.split()
        if command == "cat /etc/os-release":
            return 0, self.os_release, ""
        if command == "test -d /run/systemd/system":
            return (0 if self.systemd else 1), "", ""
        if command.startswith("for t in start-stop-daemon"):
            return 0, "".join(f"{tool}\n" for tool in self.sysv_tools), ""
        if command.startswith("apt-get"):
            return 0, "", ""
        if command.startswith("python3 -c"):
            return 0, "3.11\n", ""
        if command == 'echo "$SSH_CONNECTION"':
            return 0, "127.0.0.1 50000 127.0.0.1 22\n", ""
        if command.startswith("/usr/sbin/sshd -T"):
            return 0, f"port 22\npermitrootlogin {self.permit_root_login}\n", ""
        if words[:2] == ["getent", "passwd"]:
            user = self.users.get(words[2])
            return (0, f"{words[2]}:x:{user[0]}:{user[1]}::{user[2]}:/bin/bash\n", "") if user else (2, "", "")
        if words[:2] == ["getent", "shadow"]:
            pw = self.shadow.get(words[2])
            return (0, f"{words[2]}:{pw}:19000::::::\n", "") if pw is not None else (2, "", "")
        if words[0] == "useradd":
            name = words[-1]
            if name in self.users:
                return 9, "", f"useradd: user '{name}' already exists"
            self.users[name] = (int(words[words.index("--uid") + 1]), int(words[words.index("--gid") + 1]),
                                words[words.index("--home-dir") + 1])
            self.shadow[name] = "!"
            return 0, "", ""
        if words[:2] == ["usermod", "-p"]:
            self.shadow[words[3]] = words[2]
            return 0, "", ""
        if words[:2] == ["grep", "-qxF"]:
            return (0, "", "") if words[2] in self.authorized else (1, "", "")
        if "authorized_keys" in command and "printf" in command:
            self.authorized.append(shlex.split(command.rsplit("printf '%s\\n' ", 1)[1].split(" >>")[0])[0])
            return 0, "", ""
        if words[0] == "cat" and len(words) == 2:
            return (0, self.files[words[1]], "") if words[1] in self.files else (1, "", "No such file")
        match = re.fullmatch(r"cat > (\S+)\.part && mv -f \S+ (\S+)", command)
        if match:
            self.files[match.group(2)] = stdin
            return 0, "", ""
        if words[:2] == ["rm", "-f"]:
            self.files.pop(words[2], None)
            return 0, "", ""
        if command == "id -u":
            return 0, "0\n", ""
        return 127, "", f"fake node: unknown command {command!r}"


class _Server(paramiko.ServerInterface):
    def __init__(self, node: FakeNode):
        self.node = node
        self.user = ""

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_auth_password(self, username, password):
        self.node.auth_attempts.append((username, "password"))
        ok = username == "root" and password == self.node.root_password and self.node.permit_root_login == "yes"
        self.user = username
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.node.auth_attempts.append((username, "publickey"))
        line = f"{key.get_name()} {key.get_base64()}"
        ok = username in self.node.users and any(a.startswith(line) for a in self.node.authorized)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self._exec, args=(channel, command.decode()), daemon=True).start()
        return True

    def _exec(self, channel, command):
        stdin = b""
        channel.settimeout(0.15)
        # The client sends stdin then EOF when it has input; a short wait is enough for these commands.
        try:
            while True:
                chunk = channel.recv(65536)
                if not chunk:
                    break
                stdin += chunk
        except TimeoutError:
            pass
        code, out, err = self.node.run(command, stdin.decode())
        channel.sendall(out.encode())
        channel.sendall_stderr(err.encode())
        channel.send_exit_status(code)
        channel.close()


class FakeSSHServer:
    """Listens on 127.0.0.1 with an ed25519 host key; each connection talks to the same FakeNode."""

    def __init__(self, node: FakeNode | None = None):
        self.node = node or FakeNode()
        self.host_key = paramiko.Ed25519Key.from_private_key(_new_ed25519_pem())
        self.port = free_port()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(16)
        self._stop = False
        self._transports: list[paramiko.Transport] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(client)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            try:
                transport.start_server(server=_Server(self.node))
            except (paramiko.SSHException, EOFError, OSError):
                continue

    def close(self):
        self._stop = True
        self._sock.close()
        for transport in self._transports:
            transport.close()


def _new_ed25519_pem():
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    return io.StringIO(pem.decode())
