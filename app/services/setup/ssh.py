"""SSH: the master's key, host-key pinning and connections to a node."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import uuid
from pathlib import Path

import fabric
import paramiko

from app.services.setup.errors import HostKeyMismatch, SetupError

SSH_TIMEOUT_S = 10


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
