"""Software synchronization on the node: apt installs the packages of the node's roles.

The master's role synchronizer POSTs the roles; the install runs in a background thread and
reports per-package progress (parsed from apt's machine-readable status on APT::Status-Fd),
which the master reads from GET /v1/software and from /v1/stats.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.config import AgentConfig, write_private
from agent.roles import ROLE_PACKAGES
from agent.stats import dpkg_installed

# What every node runs whatever its roles: the firewall and the scheduler (docs/node-setup.md).
BASE_PACKAGES = ["nftables", "cron"]
ROLE_SERVICES: dict[str, list[str]] = {
    "web": ["nginx", "php8.2-fpm"],
    "dns": ["named"],
    "mail": ["exim4", "dovecot"],
    "db": ["mariadb"],
}
STATE_FILE = "software.json"
LOG_LINES = 40
APT_TIMEOUT_S = 1800
TEMPLATES = Path(__file__).resolve().parent / "templates"
_STATUS_RE = re.compile(r"^(pmstatus|dlstatus|pmerror|pmconffile):(.*?):([0-9.]+):(.*)$")
_APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "APT_LISTCHANGES_FRONTEND": "none",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
}


def service_commands(init_system: str, service: str, start: bool, *, systemctl: str = "systemctl",
                     service_cmd: str = "service", update_rc_d: str = "update-rc.d") -> list[list[str]]:
    """The commands that enable and start (or stop and disable) one service under the node's init."""
    if init_system == "sysv":
        # `defaults` makes the rc links a package may not have made; `enable` turns K links back into S.
        if start:
            return [[update_rc_d, service, "defaults"], [update_rc_d, service, "enable"],
                    [service_cmd, service, "start"]]
        return [[service_cmd, service, "stop"], [update_rc_d, service, "disable"]]
    return [[systemctl, "enable" if start else "disable", "--now", service]]


class Busy(Exception):
    """An installation for other roles is running; the caller should ask again later."""


def packages_for(roles: list[str]) -> list[str]:
    """The packages a node with these roles needs, in a stable order."""
    wanted = list(BASE_PACKAGES)
    for role in roles:
        wanted += [p for p in ROLE_PACKAGES.get(role, []) if p not in wanted]
    return wanted



def templates_digest(directory: Path = TEMPLATES) -> dict[str, str]:
    """sha256 of every template file the agent renders from."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*")) if p.is_file()}


def parse_status_line(line: str) -> tuple[str, str, float, str] | None:
    """One APT::Status-Fd line as (kind, package, percent, message), or None."""
    match = _STATUS_RE.match(line.strip())
    if not match:
        return None
    kind, package, percent, message = match.groups()
    return kind, package.split(":", 1)[0], float(percent), message


class SoftwareManager:
    """Runs one apt installation at a time for the node's roles and keeps its progress."""

    def __init__(
        self,
        config: AgentConfig,
        apt_get: str = "apt-get",
        systemctl: str = "systemctl",
        service: str = "service",
        update_rc_d: str = "update-rc.d",
        installed: Callable[[list[str]], set[str]] = dpkg_installed,
        manage_packages: bool | None = None,
    ) -> None:
        self.config = config
        self.apt_get = apt_get
        self.systemctl = systemctl
        self.service = service
        self.update_rc_d = update_rc_d
        self.installed = installed
        # A private root (tests, the demo's local node) must never touch the host's packages.
        self.manage_packages = Path(config.root) == Path("/") if manage_packages is None else manage_packages
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.path = Path(config.state_dir) / STATE_FILE
        self.state = self._load()
        if self.state.get("roles") is not None:
            config.roles = list(self.state["roles"])

    def _load(self) -> dict:
        try:
            state = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"state": "idle", "roles": None, "packages": {}, "log": []}
        if state.get("state") == "running":
            state["state"] = "failed"
            state["error"] = "interrupted: the agent restarted during the installation; it will be started again"
        return state

    def _save(self) -> None:
        write_private(self.path, (json.dumps(self.state, indent=1) + "\n").encode())

    def status(self, with_templates: bool = False) -> dict:
        """The current progress (a copy), optionally with the templates' hashes."""
        with self._lock:
            doc = json.loads(json.dumps(self.state))
        if with_templates:
            doc["templates"] = templates_digest()
        return doc

    def start(self, roles: list[str]) -> dict:
        """Start installing the packages of roles (no-op if that is already running)."""
        with self._lock:
            if self.state.get("state") == "running":
                if self.state.get("roles") == roles:
                    return json.loads(json.dumps(self.state))
                raise Busy(f"an installation for roles {self.state.get('roles')} is running")
            previous = self.state.get("roles") or list(self.config.roles)
            packages = packages_for(roles)
            self.config.roles = list(roles)
            self.state = {
                "state": "running",
                "roles": list(roles),
                "previous_roles": previous,
                "packages": {p: "pending" for p in packages},
                "percent": 0.0,
                "current": "starting",
                "started_at": time.time(),
                "finished_at": None,
                "error": None,
                "log": [],
            }
            self._save()
            self._thread = threading.Thread(target=self._run, args=(list(roles), previous), daemon=True,
                                            name="software-sync")
            self._thread.start()
            return json.loads(json.dumps(self.state))

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background installation (tests)."""
        if self._thread:
            self._thread.join(timeout)

    def _update(self, **changes) -> None:
        with self._lock:
            self.state.update(changes)
            self._save()

    def _log(self, line: str) -> None:
        line = line.rstrip()
        if not line:
            return
        with self._lock:
            self.state["log"] = (self.state.get("log") or [])[-(LOG_LINES - 1):] + [line[:300]]

    def _set_package(self, package: str, status: str) -> None:
        with self._lock:
            if package in self.state["packages"] and self.state["packages"][package] != "installed":
                self.state["packages"][package] = status

    def _run(self, roles: list[str], previous: list[str]) -> None:
        packages = packages_for(roles)
        try:
            if not self.manage_packages:
                self._finish_skipped(packages)
                return
            self._command([self.apt_get_cmd("dpkg"), "--configure", "-a"], "dpkg --configure -a", check=False)
            if not self._command([self.apt_get, "-q", "update"], "apt-get update", check=False):
                self._log("apt-get update reported errors; installing from whatever indexes are there")
            self._install(packages)
            self._configure(roles)
            self._services(roles, previous)
            self._secure(roles)
            missing = [p for p in packages if p not in self.installed(packages)]
            with self._lock:
                for p in packages:
                    self.state["packages"][p] = "failed" if p in missing else "installed"
            if missing:
                self._update(state="failed", finished_at=time.time(), current=None,
                             error=f"not installed after apt-get: {', '.join(missing)}")
            else:
                self._update(state="done", percent=100.0, finished_at=time.time(), current=None, error=None)
        except Exception as exc:  # noqa: BLE001 - any failure must end as a visible "failed"
            self._update(state="failed", finished_at=time.time(), current=None, error=str(exc)[:2000])

    def apt_get_cmd(self, name: str) -> str:
        """The dpkg binary next to the configured apt-get (tests point both at fakes)."""
        return str(Path(self.apt_get).with_name(name)) if os.sep in self.apt_get else name

    def _finish_skipped(self, packages: list[str]) -> None:
        have = self.installed(packages)
        with self._lock:
            for p in packages:
                self.state["packages"][p] = "installed" if p in have else "not managed"
        self._update(state="skipped", percent=100.0, finished_at=time.time(), current=None,
                     error=None, note=f"the agent's root is {self.config.root}, not /: packages are not managed")

    def _command(self, argv: list[str], what: str, check: bool = True) -> bool:
        self._update(current=what)
        proc = subprocess.run(argv, capture_output=True, text=True, env=_APT_ENV, timeout=APT_TIMEOUT_S,
                              check=False)
        for line in (proc.stdout + proc.stderr).splitlines()[-10:]:
            self._log(line)
        if proc.returncode != 0 and check:
            raise RuntimeError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")
        return proc.returncode == 0

    def _install(self, packages: list[str]) -> None:
        read_fd, write_fd = os.pipe()
        argv = [self.apt_get, "-y", "-q", "-o", f"APT::Status-Fd={write_fd}",
                "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                "install", *packages]
        self._update(current="apt-get install " + " ".join(packages))
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=_APT_ENV, pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        reader = threading.Thread(target=self._read_status, args=(read_fd,), daemon=True)
        reader.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            self._log(line)
        code = proc.wait(APT_TIMEOUT_S)
        reader.join(10)
        if code != 0:
            tail = " / ".join((self.state.get("log") or [])[-3:])
            raise RuntimeError(f"apt-get install failed (exit {code}): {tail}")

    def _read_status(self, fd: int) -> None:
        with os.fdopen(fd, "r", errors="replace") as stream:
            for line in stream:
                parsed = parse_status_line(line)
                if not parsed:
                    continue
                kind, package, percent, message = parsed
                if kind == "pmerror":
                    self._set_package(package, "failed")
                    self._log(f"{package}: {message}")
                    continue
                if kind == "pmstatus":
                    self._set_package(package, "installed" if message.startswith("Installed ") else "installing")
                self._update(percent=round(percent, 1), current=message[:200])

    def _configure(self, roles: list[str]) -> None:
        """Write the agent's configuration of a role's service before it starts: the dns role's bind is
        authoritative-only from the start (Debian's defaults offer recursion and zone transfers)."""
        from agent.ops import dns

        if "dns" in roles and (Path(self.config.root) / dns.NAMED_CONF).exists():
            self._update(current="writing bind's configuration")
            dns.apply_config(self.config)
            self._log("bind: authoritative-only options written (etc/bind/named.conf.options)")

    def _secure(self, roles: list[str]) -> None:
        """Once a db node's MariaDB runs: what mysql_secure_installation does (agent/ops/db.py `harden`)."""
        if "db" not in roles:
            return
        from agent.ops import db

        self._update(current="securing MariaDB")
        try:
            dropped = db.harden()
        except db.EngineError as exc:
            self._log(f"MariaDB: not secured yet ({exc.message}); the next role sync tries again")
            return
        self._log("MariaDB: no anonymous users, no remote root, no test database, root by unix_socket only"
                  + (f" (dropped {len(dropped)} accounts)" if dropped else ""))

    def _services(self, roles: list[str], previous: list[str]) -> None:
        """Start the services of the node's roles; stop those of roles it no longer has."""
        init = self.config.init_system
        if init == "systemd" and not Path("/run/systemd/system").is_dir():
            self._log("systemd is not running: services are left as the packages set them")
            return
        keep = {s for r in roles for s in ROLE_SERVICES.get(r, [])}
        stop = [s for r in previous if r not in roles for s in ROLE_SERVICES.get(r, []) if s not in keep]
        for service in stop:
            self._service_commands(service, False, f"stopping {service}")
        for service in sorted(keep):
            self._service_commands(service, True, f"starting {service}")

    def _service_commands(self, service: str, start: bool, what: str) -> None:
        if self.config.init_system == "sysv" and not Path(self.config.root, "etc/init.d", service).exists():
            self._log(f"{service}: no init script /etc/init.d/{service}; left as it is")
            return
        for argv in service_commands(self.config.init_system, service, start, systemctl=self.systemctl,
                                     service_cmd=self.service, update_rc_d=self.update_rc_d):
            self._command(argv, what, check=False)


_managers: dict[str, SoftwareManager] = {}
_managers_lock = threading.Lock()


def manager_for(config: AgentConfig) -> SoftwareManager:
    """The one SoftwareManager of this agent process (per state dir)."""
    key = str(Path(config.state_dir).resolve())
    with _managers_lock:
        if key not in _managers:
            _managers[key] = SoftwareManager(config)
        return _managers[key]
