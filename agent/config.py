"""The agent's configuration file: where it listens, where its secrets and files live."""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from agent.roles import ROLE_PACKAGES

DEFAULT_PORT = 8443
DEFAULT_MAX_CLOCK_SKEW_S = 60
# 128 bits is the floor for an HMAC key; the generated secret is 256 bits.
MIN_SECRET_BYTES = 16
# The lowest UID a hosting account can have (agent/validation.py `uid`).
MIN_HOSTING_UID = 1000
_PATH_FIELDS = ("root", "state_dir", "secret_file", "cert_file", "key_file", "log_file")
# How the node starts services: systemd units, or Debian's init scripts (`service`, `update-rc.d`)
# on nodes whose init is not systemd (sysvinit, or a container's plain process supervisor).
INIT_SYSTEMS = ("systemd", "sysv")


class ConfigError(Exception):
    """The configuration is missing, unsafe or malformed; the agent must not start."""


@dataclass
class AgentConfig:
    """Everything the agent reads at start; loaded from a JSON file with mode 0600."""

    root: Path
    state_dir: Path
    secret_file: Path
    cert_file: Path
    key_file: Path
    listen_host: str = "0.0.0.0"
    listen_port: int = DEFAULT_PORT
    roles: list[str] = field(default_factory=list)
    reload_commands: dict[str, list[str]] = field(default_factory=dict)
    max_clock_skew_s: int = DEFAULT_MAX_CLOCK_SKEW_S
    log_file: Path | None = None
    init_system: str = "systemd"
    # [first, last] UIDs of hosting accounts whose new connections to loopback the firewall refuses (set on
    # the panel's own server, whose loopback holds the panel's Redis and web server); None: not refused.
    closed_loopback_uids: list[int] | None = None

    def __post_init__(self) -> None:
        for name in _PATH_FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value))
        if not isinstance(self.listen_port, int) or not 0 < self.listen_port < 65536:
            raise ConfigError(f"listen_port must be a port number, got {self.listen_port!r}")
        if not isinstance(self.max_clock_skew_s, int) or self.max_clock_skew_s <= 0:
            raise ConfigError("max_clock_skew_s must be a positive number of seconds")
        if not isinstance(self.roles, list) or not all(isinstance(r, str) for r in self.roles):
            raise ConfigError("roles must be a list of role names")
        if self.init_system not in INIT_SYSTEMS:
            raise ConfigError(f"init_system must be one of {', '.join(INIT_SYSTEMS)}, got {self.init_system!r}")
        for service, argv in self.reload_commands.items():
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise ConfigError(f"reload_commands[{service!r}] must be a non-empty argv list")
        if self.closed_loopback_uids is not None:
            uids = self.closed_loopback_uids
            # Never a system account's UID: root, www-data or the agent itself losing loopback breaks the node.
            if (not isinstance(uids, list) or len(uids) != 2 or not all(type(u) is int for u in uids)
                    or not MIN_HOSTING_UID <= uids[0] <= uids[1] < 2**31):
                raise ConfigError(f"closed_loopback_uids must be [first, last] with {MIN_HOSTING_UID} <= first "
                                  f"<= last, got {uids!r}")

    @classmethod
    def load(cls, path: str | os.PathLike) -> AgentConfig:
        """Read and check a config file; raise ConfigError if it or the secret is unsafe."""
        path = Path(path)
        require_private(path, "config file")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
        try:
            config = cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        require_private(config.secret_file, "secret file")
        if config.key_file.exists():
            require_private(config.key_file, "TLS key file")
        return config

    def read_secret(self) -> bytes:
        """The per-node HMAC key (the secret file holds it as hex)."""
        return read_secret_file(self.secret_file)

    def to_json(self) -> dict:
        """The config as written to disk (paths as strings)."""
        data = asdict(self)
        for name in _PATH_FIELDS:
            if data[name] is not None:
                data[name] = str(data[name])
        return data


def require_private(path: Path, what: str) -> None:
    """Raise ConfigError unless path exists, is a regular file and only its owner can read it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ConfigError(
            f"{what} {path} is accessible by group or others (mode {st.st_mode & 0o777:04o}); run: chmod 600 {path}"
        )


def read_secret_file(path: Path) -> bytes:
    """Decode the hex secret in path, refusing short or malformed secrets."""
    text = Path(path).read_text().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"secret file {path} does not hold a hex string") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"secret in {path} is shorter than {MIN_SECRET_BYTES} bytes")
    return secret


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace path with data, the new file created 0600 from the start."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_config(path: str | os.PathLike, **fields_: object) -> AgentConfig:
    """Validate fields as an AgentConfig and write them to path with mode 0600."""
    config = AgentConfig(**fields_)
    body = json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n"
    write_private(Path(path), body.encode())
    return config


# What a Debian root holds before any account is added; shadow-utils needs these files to exist.
BASE_ACCOUNT_FILES = {
    "passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "group": "root:x:0:\n",
    "shadow": "root:*:19000:0:99999:7:::\n",
    "gshadow": "root:*::\n",
}


def seed_account_files(root: Path) -> None:
    """Give a private root prefix the account files of a fresh system (a real `/` has them already)."""
    if root.resolve() == Path("/"):
        return
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    for name, content in BASE_ACCOUNT_FILES.items():
        path = etc / name
        if not path.exists():
            path.write_text(content)
            path.chmod(0o640 if name in ("shadow", "gshadow") else 0o644)


def initialize(
    config_path: str | os.PathLike,
    *,
    root: str | os.PathLike,
    state_dir: str | os.PathLike,
    secret_file: str | os.PathLike,
    listen_host: str = "0.0.0.0",
    listen_port: int = DEFAULT_PORT,
    roles: list[str] | tuple[str, ...] = (),
    hostnames: list[str] | tuple[str, ...] = (),
    addresses: list[str] | tuple[str, ...] = (),
    cert_file: str | os.PathLike | None = None,
    key_file: str | os.PathLike | None = None,
    log_file: str | os.PathLike | None = None,
    reload_commands: dict[str, list[str]] | None = None,
    max_clock_skew_s: int = DEFAULT_MAX_CLOCK_SKEW_S,
    init_system: str = "systemd",
    closed_loopback_uids: list[int] | None = None,
) -> dict:
    """Set a node up to serve (idempotent): config, secret if absent, certificate if absent.

    Returns {"fingerprint", "config_path", "config"}; never the secret itself.
    """
    # Only init needs cryptography; keeping it out of the module keeps it out of the serving process.
    from agent.tls import ensure_certificate

    unknown = sorted(set(roles) - set(ROLE_PACKAGES))
    if unknown:
        raise ConfigError(f"unknown roles {', '.join(unknown)}; known: {', '.join(ROLE_PACKAGES)}")
    root, state_dir, secret_file = Path(root), Path(state_dir), Path(secret_file)
    root.mkdir(parents=True, exist_ok=True)
    seed_account_files(root)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if secret_file.exists():
        require_private(secret_file, "secret file")
        read_secret_file(secret_file)
    else:
        write_private(secret_file, (secrets.token_hex(32) + "\n").encode())
    config = write_config(
        config_path,
        root=root,
        state_dir=state_dir,
        secret_file=secret_file,
        cert_file=Path(cert_file) if cert_file else state_dir / "agent.crt",
        key_file=Path(key_file) if key_file else state_dir / "agent.key",
        listen_host=listen_host,
        listen_port=listen_port,
        roles=list(roles),
        reload_commands=dict(reload_commands or {}),
        max_clock_skew_s=max_clock_skew_s,
        log_file=Path(log_file) if log_file else None,
        init_system=init_system,
        closed_loopback_uids=list(closed_loopback_uids) if closed_loopback_uids else None,
    )
    if config.key_file.exists():
        require_private(config.key_file, "TLS key file")
    fp = ensure_certificate(
        config.cert_file,
        config.key_file,
        list(hostnames) or [socket.gethostname()],
        list(addresses),
    )
    return {"fingerprint": fp, "config_path": str(config_path), "config": config.to_json()}
