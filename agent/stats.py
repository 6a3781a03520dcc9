"""What the statistics collector polls: versions, load, memory, disk, roles, list versions."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable

from agent import API_VERSION, __version__, usage
from agent.config import AgentConfig
from agent.roles import ROLE_PACKAGES

PACKAGE_CACHE_S = 5.0


def dpkg_installed(packages: Iterable[str]) -> set[str]:
    """The subset of packages dpkg reports as installed; empty when dpkg is absent."""
    packages = sorted(set(packages))
    if not packages or shutil.which("dpkg-query") is None:
        return set()
    # dpkg-query exits 1 when any package is unknown but still prints the known ones.
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Status}\n", *packages],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return parse_dpkg_status(result.stdout)


def parse_dpkg_status(output: str) -> set[str]:
    """Names whose status line from dpkg-query ends in "installed" (not config-files etc.)."""
    installed = set()
    for line in output.splitlines():
        name, _, status = line.partition("\t")
        if status.split()[-1:] == ["installed"]:
            installed.add(name)
    return installed


class RoleChecker:
    """Which configured roles have all their packages; dpkg is asked at most every few seconds."""

    def __init__(
        self,
        query: Callable[[Iterable[str]], set[str]] = dpkg_installed,
        ttl_s: float = PACKAGE_CACHE_S,
    ) -> None:
        self._query = query
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, frozenset[str], set[str]] | None = None

    def roles(self, roles: Iterable[str]) -> dict[str, dict]:
        """{role: {"installed": bool, "missing": [packages]}} for each role given."""
        roles = list(roles)
        wanted = frozenset(p for r in roles for p in ROLE_PACKAGES.get(r, []))
        installed = self._installed(wanted)
        report = {}
        for role in roles:
            missing = [p for p in ROLE_PACKAGES.get(role, []) if p not in installed]
            report[role] = {"installed": not missing, "missing": missing}
        return report

    def _installed(self, wanted: frozenset[str]) -> set[str]:
        with self._lock:
            now = time.monotonic()
            if self._cached and self._cached[1] == wanted and now - self._cached[0] < self._ttl_s:
                return self._cached[2]
            installed = self._query(wanted)
            self._cached = (now, wanted, installed)
            return installed


def memory_usage(meminfo: str = "/proc/meminfo") -> dict:
    """Total and available memory in bytes, and the percentage in use, from /proc/meminfo."""
    values = {}
    with open(meminfo) as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                values[key] = int(rest.split()[0]) * 1024
    total, available = values["MemTotal"], values["MemAvailable"]
    return {
        "total": total,
        "available": available,
        "used_percent": round((total - available) / total * 100, 1) if total else 0.0,
    }


def disk_usage(path: str) -> dict:
    """Size and free space of the filesystem holding path, as an unprivileged user sees it."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    # Like df: the blocks reserved for root count as neither used nor available.
    usable = used + free
    return {
        "path": path,
        "total": total,
        "free": free,
        "used_percent": round(used / usable * 100, 1) if usable else 0.0,
    }


def software_state(config: AgentConfig) -> dict:
    """Progress of role software installation (agent/software.py), without its log."""
    from agent.software import manager_for

    status = manager_for(config).status()
    if status.get("state") == "idle":
        return {"state": "idle"}
    status.pop("log", None)
    return status


def collect(config: AgentConfig, started_at: float, checker: RoleChecker) -> dict:
    """The /v1/stats document for this node."""
    # First: loading the software state applies the roles the master last assigned.
    software = software_state(config)
    return {
        "api_version": API_VERSION,
        "agent_version": __version__,
        "uptime_s": int(time.time() - started_at),
        "load": [round(x, 2) for x in os.getloadavg()],
        "memory": memory_usage(),
        "disk": disk_usage(str(config.root)),
        "roles": checker.roles(config.roles),
        "software": software,
        # Bytes per hosting user here, measured in the background (agent/usage.py).
        "usage": usage.report(config),
    }
