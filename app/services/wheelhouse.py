"""The agent's wheelhouse: everything a node needs to install the agent without reaching PyPI.

Built on the master once per content (the agent's requirements, the node's Python version, the
agent's own code) and cached; the setup job copies it to the node over SSH, where Debian's
python3 makes a venv and installs it with `pip install --no-index --find-links`.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import agent
from app.services.errors import ServiceError

AGENT_DIR = Path(agent.__file__).resolve().parent
REQUIREMENTS = AGENT_DIR / "requirements.txt"
DIST_NAME = "hostfleet_agent"
# Zip entries carry this date so the same code always gives the same wheel bytes.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
PIP_TIMEOUT_S = 900


class WheelhouseError(ServiceError):
    """The wheelhouse could not be built; the message says why."""


@dataclass(frozen=True)
class Wheelhouse:
    """A directory of wheels ready to copy, its content key and the agent version it installs."""

    path: Path
    key: str
    agent_version: str

    @property
    def files(self) -> list[Path]:
        """The wheel files, sorted by name."""
        return sorted(self.path.glob("*.whl"))


def agent_sources() -> list[Path]:
    """The files that make up the agent package (code and templates, not its tests)."""
    files = []
    for path in sorted(AGENT_DIR.rglob("*")):
        rel = path.relative_to(AGENT_DIR)
        if not path.is_file() or rel.parts[0] == "tests" or "__pycache__" in rel.parts:
            continue
        if path.suffix in (".py", ".j2") or path.name in ("requirements.txt", "README.md"):
            files.append(path)
    return files


def agent_digest() -> str:
    """A hash of the agent's code and templates: a new agent wheel whenever they change."""
    digest = hashlib.sha256()
    for path in agent_sources():
        digest.update(str(path.relative_to(AGENT_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def agent_wheel_version() -> str:
    """The agent's version with its content hash as a local label (0.1.0+g0123456789)."""
    return f"{agent.__version__}+g{agent_digest()[:10]}"


def requirement_lines() -> list[str]:
    """The agent's pinned requirements, without comments."""
    lines = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_agent_wheel(target_dir: Path) -> Path:
    """Write the agent package as a pure-Python wheel into target_dir (reproducible bytes)."""
    version = agent_wheel_version()
    name = f"{DIST_NAME}-{version}-py3-none-any.whl"
    target = target_dir / name
    if target.exists():
        return target
    dist_info = f"{DIST_NAME}-{version}.dist-info"
    entries: list[tuple[str, bytes]] = []
    for path in agent_sources():
        entries.append((f"agent/{path.relative_to(AGENT_DIR).as_posix()}", path.read_bytes()))
    metadata = [
        "Metadata-Version: 2.1",
        "Name: hostfleet-agent",
        f"Version: {version}",
        "Summary: Hostfleet node agent",
        "Requires-Python: >=3.10",
        *(f"Requires-Dist: {req}" for req in requirement_lines()),
    ]
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    wheel_meta = "Wheel-Version: 1.0\nGenerator: hostfleet\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entries.append((f"{dist_info}/WHEEL", wheel_meta.encode()))
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in entries:
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.replace(tmp, target)
    return target


def deps_key(python_version: str) -> str:
    """Content key of the dependency wheels: requirements, the node's Python, the machine."""
    material = "\n".join([*requirement_lines(), python_version, platform.machine()])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _pip_command(python_version: str, target: Path) -> list[str]:
    """pip wheel for the master's own Python; pip download of binary wheels for another one."""
    if python_version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q",
                "-r", str(REQUIREMENTS), "-w", str(target)]
    machine = platform.machine()
    return [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
            "--only-binary=:all:", "--python-version", python_version,
            "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}",
            "-r", str(REQUIREMENTS), "-d", str(target)]


def build_wheelhouse(cache_dir: Path, python_version: str) -> Wheelhouse:
    """The wheelhouse for nodes running python_version ("3.11"), built once and cached."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        # Several setup jobs may ask at once; one builds, the others wait and reuse it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        deps = cache_dir / f"deps-{deps_key(python_version)}"
        if not (deps / ".complete").exists():
            tmp = Path(tempfile.mkdtemp(prefix="deps-", dir=cache_dir))
            try:
                proc = subprocess.run(_pip_command(python_version, tmp), capture_output=True, text=True,
                                      timeout=PIP_TIMEOUT_S, check=False)
                if proc.returncode != 0:
                    raise WheelhouseError(
                        "building the agent's wheelhouse failed (pip needs PyPI or a configured index): "
                        + (proc.stderr or proc.stdout).strip()[-1500:]
                    )
                (tmp / ".complete").write_text("\n".join(requirement_lines()) + "\n")
                if deps.exists():
                    shutil.rmtree(deps)
                os.replace(tmp, deps)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        version = agent_wheel_version()
        house = cache_dir / f"house-{deps.name[5:]}-{agent_digest()[:10]}"
        if not (house / ".complete").exists():
            house.mkdir(exist_ok=True)
            for wheel in deps.glob("*.whl"):
                if (house / wheel.name).exists():
                    continue
                if _same_fs(wheel, house):
                    os.link(wheel, house / wheel.name)
                else:
                    shutil.copy2(wheel, house)
            build_agent_wheel(house)
            (house / ".complete").write_text(version + "\n")
    key = hashlib.sha256(
        "\n".join(f"{w.name}:{w.stat().st_size}" for w in sorted(house.glob("*.whl"))).encode()
    ).hexdigest()[:16]
    return Wheelhouse(path=house, key=key, agent_version=version)


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev
