"""Shared helpers for the ops tests: a config under a private root, a recording reload, tree hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent import liststate
from agent.config import AgentConfig
from agent.signing import sign_headers

SERVICES = ("nginx", "bind", "exim", "dovecot", "firewall", "cron", "php-fpm")
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    "alice:x:1001:1001::/home/alice:/bin/bash\n"
    "bob:x:1002:1002::/home/bob:/bin/bash\n"
)
# Records each reload as a line "<service>" and fails while <log>.fail exists.
_RELOAD_SCRIPT = 'echo "$1" >> "$0"; if [ -e "$0.fail" ]; then echo "reload of $1 failed" >&2; exit 1; fi'


class Reloads:
    """The reload calls the ops made, and a switch that makes the next ones fail."""

    def __init__(self, log: Path):
        self.log = log

    def calls(self) -> list[str]:
        """Services reloaded so far, in order."""
        return self.log.read_text().split() if self.log.exists() else []

    def fail(self, on: bool = True) -> None:
        """Make every reload fail (on) or succeed again (off)."""
        flag = self.log.with_name(self.log.name + ".fail")
        if on:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)


def make_config(tmp_path: Path, **overrides) -> tuple[AgentConfig, Reloads]:
    """An AgentConfig whose root is a private folder and whose reloads are recorded."""
    root = tmp_path / "root"
    state = tmp_path / "state"
    (root / "etc").mkdir(parents=True)
    state.mkdir()
    (root / "etc" / "passwd").write_text(PASSWD)
    names = [line.split(":")[0] for line in PASSWD.splitlines()]
    ids = [line.split(":")[3] for line in PASSWD.splitlines()]
    (root / "etc" / "group").write_text("".join(f"{n}:x:{g}:\n" for n, g in zip(names, ids, strict=True)))
    (root / "etc" / "shadow").write_text("".join(f"{n}:*:19000:0:99999:7:::\n" for n in names))
    (root / "etc" / "gshadow").write_text("".join(f"{n}:*::\n" for n in names))
    log = tmp_path / "reloads.log"
    fields = dict(
        root=root,
        state_dir=state,
        secret_file=tmp_path / "secret",
        cert_file=tmp_path / "cert.pem",
        key_file=tmp_path / "key.pem",
        reload_commands={s: ["sh", "-c", _RELOAD_SCRIPT, str(log), s] for s in SERVICES},
    )
    fields.update(overrides)
    return AgentConfig(**fields), Reloads(log)


def tree_digest(*folders: Path) -> dict[str, str]:
    """Every file under folders (path -> sha256), to prove a tree is byte-for-byte unchanged."""
    found = {}
    for folder in folders:
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                path = Path(dirpath, name)
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def config_digest(config) -> dict[str, str]:
    """The digest of the root prefix and the state folder of an agent."""
    return tree_digest(Path(config.root), Path(config.state_dir))


def envelope(rows: list[dict], version: int = 1) -> tuple[int, str, list[dict]]:
    """The (version, hash, rows) of a list replace, as an op's replace() takes them."""
    return version, liststate.list_hash(rows), rows


def list_body(rows: list[dict], version: int = 1) -> dict:
    """A PUT /v1/lists/<name> body as the master sends it."""
    return {"version": version, "hash": liststate.list_hash(rows), "rows": rows}


def require_binary(*names: str) -> None:
    """Skip the test, saying which package to install, when a checker is missing."""
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f"{name} is not installed (apt-get install it; see agent/tests/apt-packages.txt)")


def nft_usable() -> str | None:
    """None when nft can check rulesets here, else the reason it cannot."""
    if shutil.which("nft") is None:
        return "nft is not installed (apt-get install nftables)"
    if os.geteuid() != 0:
        return "nft needs root (CAP_NET_ADMIN) to check a ruleset"
    probe = subprocess.run(["nft", "-c", "list", "tables"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"nft cannot reach netfilter here: {probe.stderr.strip()}"
    return None


class SignedClient:
    """Sends signed JSON requests to the real agent app through Flask's test client."""

    def __init__(self, app, secret: bytes):
        self.client = app.test_client()
        self.secret = secret

    def request(self, method: str, path: str, payload=None):
        """One signed request; returns the Flask test response."""
        body = b"" if payload is None else json.dumps(payload).encode()
        # One second ahead: the agent refuses requests signed before it started (replay guard).
        headers = sign_headers(self.secret, method, path, body, timestamp=int(time.time()) + 1)
        headers["Content-Type"] = "application/json"
        return self.client.open(path, method=method, data=body, headers=headers)


def make_app(tmp_path: Path) -> tuple[AgentConfig, Reloads, SignedClient]:
    """The real agent app (create_app) over a private root, and a client that signs."""
    from agent.server import create_app

    config, reloads = make_config(tmp_path)
    secret = os.urandom(32)
    config.secret_file.write_text(secret.hex())
    config.secret_file.chmod(0o600)
    return config, reloads, SignedClient(create_app(config), secret)
