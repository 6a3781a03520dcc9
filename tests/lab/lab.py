"""A lab of real Debian 12 nodes on one machine: nspawn-booted overlays of one cached rootfs."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RECIPE_VERSION = 1
SUITE = "bookworm"
MIRROR = os.environ.get("HOSTFLEET_LAB_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("HOSTFLEET_LAB_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
CACHE_DIR = Path(os.environ.get("HOSTFLEET_LAB_CACHE", "/var/cache/hostfleet-lab"))
RUN_DIR = Path(os.environ.get("HOSTFLEET_LAB_RUN", "/var/lib/hostfleet-lab/run"))
REPO_DIR = CACHE_DIR / "repo"
LOCK_FILE = CACHE_DIR / "lab.lock"
STATE_FILE = RUN_DIR / "state.json"
SSH_KEY = RUN_DIR / "id_ed25519"

BRIDGE = "hf-lab0"
NET_PREFIX = "198.18.0."
HOST_ADDRESS = NET_PREFIX + "1"
FIRST_NODE_OCTET = 11
MAX_NODES = 254 - FIRST_NODE_OCTET + 1
REPO_PORT = int(os.environ.get("HOSTFLEET_LAB_REPO_PORT", "8018"))
NFT_TABLE = "hostfleet_lab"
NODE_PREFIX = "hf-node"
NSPAWN_RUN = Path("/run/systemd/nspawn")
# A node started without systemd (init scripts): its name, and the index that places it at 198.18.0.(10+i),
# far above the systemd nodes so that `lab_nodes(n)` and `up -n N` never take it for one of theirs.
SYSV_PREFIX = "hf-sysv"
SYSV_INDEX = 200
SYSV_INIT = "/usr/local/sbin/hostfleet-lab-init"
# PID 2 of such a node (nspawn --as-pid2; nspawn's stub is PID 1): what a container's plain init does.
SYSV_INIT_TEXT = """#!/bin/sh
# Lab node without systemd: bring up the node's address (networkd does it on systemd nodes), run the
# init scripts enabled for runlevel 2 (sshd among them) as sysvinit would, then wait.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
ip link set lo up
ip link set host0 up
ip addr replace {address}/24 dev host0
for script in /etc/rc2.d/S*; do
    [ -x "$script" ] && "$script" start
done
echo "hostfleet-lab-init: {address} up, init scripts started"
trap 'for script in /etc/rc0.d/K*; do [ -x "$script" ] && "$script" stop; done; exit 0' TERM INT
while :; do
    sleep 3600 &
    wait $!
done
"""

BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server", "python3",
    "ca-certificates", "iproute2", "iputils-ping", "nftables", "cron",
    "sudo", "curl", "procps", "netbase",
]
ROLE_PACKAGES = [
    "nginx", "php-fpm", "bind9", "bind9-utils", "exim4-daemon-heavy", "dovecot-core",
    "dovecot-imapd", "mariadb-server", "nftables", "cron",
]
# What the panel's setup installs from the node's apt sources besides the roles: the agent's venv
# needs python3-venv, which a minimal Debian lacks, and an air-gapped node can only get it here.
AGENT_PACKAGES = ["python3-venv"]
REPO_PACKAGES = ROLE_PACKAGES + AGENT_PACKAGES
HOST_TOOLS = ("systemd-nspawn", "debootstrap", "dpkg-scanpackages", "ssh-keygen", "ip", "nsenter", "unshare")
APT_PACKAGES_FILE = Path(__file__).with_name("apt-packages.txt")
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HELPER_SSH_OPTS = [
    "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
    "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
]


class LabError(RuntimeError):
    """A lab operation failed."""


def log(msg: str) -> None:
    """Print a progress line to stderr."""
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def run(cmd, *, check=True, input=None, timeout=None, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; raise LabError with its output on failure."""
    res = subprocess.run(
        [str(c) for c in cmd], input=input, capture_output=True, text=True,
        timeout=timeout, env=env, cwd=cwd,
    )
    if check and res.returncode != 0:
        raise LabError(f"{' '.join(map(str, cmd))} exited {res.returncode}:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
    return res


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def base_key() -> str:
    """Content key of the base rootfs: suite, package list and recipe version."""
    return _key({"suite": SUITE, "packages": sorted(BASE_PACKAGES), "recipe": RECIPE_VERSION})


def repo_key() -> str:
    """Content key of the local repository: the base it was computed against and the roles."""
    return _key({"base": base_key(), "roles": sorted(REPO_PACKAGES), "recipe": RECIPE_VERSION})


def base_dir() -> Path:
    """Directory of the cached base rootfs for the current recipe."""
    return CACHE_DIR / "base" / base_key() / "rootfs"


@contextlib.contextmanager
def lab_lock():
    """Serialize lab changes across processes (CLI, test sessions)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- host checks

def preflight() -> str | None:
    """Return why the lab cannot run on this host, or None when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, overlay mounts, systemd-nspawn)"
    missing = [t for t in HOST_TOOLS if not shutil.which(t)]
    if missing:
        try:
            install_host_packages()
        except LabError as exc:
            return f"missing {', '.join(missing)} and could not install them: {str(exc)[:300]}"
        missing = [t for t in HOST_TOOLS if not shutil.which(t)]
        if missing:
            return f"missing {', '.join(missing)}"
    if not _kernel_has_overlay():
        return "the kernel has no overlayfs"
    if run(["unshare", "--net", "true"], check=False).returncode != 0:
        return "cannot create network namespaces here"
    return None


def _kernel_has_overlay() -> bool:
    if "overlay" in Path("/proc/filesystems").read_text():
        return True
    run(["modprobe", "overlay"], check=False)
    return "overlay" in Path("/proc/filesystems").read_text()


def install_host_packages() -> None:
    """Install the host packages listed in apt-packages.txt."""
    pkgs = [ln.split("#")[0].strip() for ln in APT_PACKAGES_FILE.read_text().splitlines()]
    pkgs = [p for p in pkgs if p]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", *pkgs]
    if run(cmd, check=False, env=env).returncode != 0:
        run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"], env=env)
        run(cmd, env=env)


def raise_inotify_limits() -> None:
    """Raise the host's inotify limits: each node's systemd needs several instances."""
    for name, want in (("max_user_instances", 8192), ("max_user_watches", 1048576)):
        path = Path("/proc/sys/fs/inotify") / name
        if int(path.read_text()) < want:
            path.write_text(str(want))


# ---------------------------------------------------------------- chroot helpers

def chroot_script(root: Path, script: str, *, overlay_lower: Path | None = None,
                  binds: dict[str, Path] | None = None, timeout: int = 1800) -> str:
    """Run a shell script chrooted in root inside a private mount namespace (mounts vanish with it)."""
    lines = ["set -e"]
    if overlay_lower is not None:
        upper, work = root.parent / "upper", root.parent / "work"
        lines.append(f"mount -t overlay overlay -o lowerdir={overlay_lower},upperdir={upper},workdir={work} {root}")
    lines += [
        f"mount -t proc proc {root}/proc",
        f"mount --rbind /dev {root}/dev",
        f"mount -t sysfs sysfs {root}/sys",
        f"cp /etc/resolv.conf {root}/etc/resolv.conf",
    ]
    for inside, host in (binds or {}).items():
        lines.append(f"mkdir -p {root}{inside} && mount --bind {host} {root}{inside}")
    lines.append(f"chroot {root} /usr/bin/env -i PATH={NODE_PATH} HOME=/root LANG=C.UTF-8 "
                 f"DEBIAN_FRONTEND=noninteractive /bin/sh -ec \"$LAB_SCRIPT\"")
    env = dict(os.environ, LAB_SCRIPT=script)
    res = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines)],
              env=env, timeout=timeout)
    return res.stdout


def _apt_sources() -> str:
    return (f"deb {MIRROR} {SUITE} main\n"
            f"deb {MIRROR} {SUITE}-updates main\n"
            f"deb {SECURITY_MIRROR} {SUITE}-security main\n")


# ---------------------------------------------------------------- base rootfs

def ensure_base() -> tuple[Path, float | None]:
    """Return the cached base rootfs, building it first if needed (and how long that took)."""
    root = base_dir()
    if (root.parent / "complete").exists():
        return root, None
    t0 = time.monotonic()
    build = root.parent.with_name(root.parent.name + ".build")
    shutil.rmtree(build, ignore_errors=True)
    (build / "rootfs").mkdir(parents=True)
    debs = CACHE_DIR / "debootstrap-debs"
    debs.mkdir(parents=True, exist_ok=True)
    log(f"building the base rootfs ({SUITE}, key {base_key()}) with debootstrap")
    # In a private mount namespace: a failed debootstrap leaves no /proc or /sys mounted on the host.
    run(["unshare", "--mount", "--propagation", "private", "debootstrap", "--variant=minbase",
         f"--include={','.join(BASE_PACKAGES)}", f"--cache-dir={debs}", SUITE, build / "rootfs", MIRROR],
        timeout=1800)
    rootfs = build / "rootfs"
    (rootfs / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
    (rootfs / "usr/sbin/policy-rc.d").chmod(0o755)
    (rootfs / "etc/apt/sources.list").write_text(_apt_sources())
    log("bringing the base up to date with bookworm-updates and bookworm-security")
    chroot_script(rootfs, "apt-get update -q\n"
                          "apt-get -y -q -o Dpkg::Options::=--force-confold dist-upgrade\n"
                          "apt-get clean\n"
                          "systemctl enable systemd-networkd.service\n"
                          "systemctl disable apt-daily.timer apt-daily-upgrade.timer "
                          "e2scrub_all.timer fstrim.timer 2>/dev/null || true\n"
                          "systemctl mask systemd-networkd-wait-online.service\n")
    _configure_base(rootfs)
    (build / "rootfs" / "usr/sbin/policy-rc.d").unlink()
    shutil.rmtree(root.parent, ignore_errors=True)
    build.rename(root.parent)
    took = time.monotonic() - t0
    (root.parent / "complete").write_text(json.dumps({"seconds": round(took, 1), "built": time.time()}))
    log(f"base rootfs built in {took:.1f} s")
    return root, took


def _configure_base(rootfs: Path) -> None:
    """Settings every node shares: sshd root login by password, no network sources, no DNS."""
    conf = rootfs / "etc/ssh/sshd_config.d/hostfleet-lab.conf"
    conf.write_text("# Lab nodes start as a fresh server would be handed to the panel.\n"
                    "PermitRootLogin yes\nPasswordAuthentication yes\nUseDNS no\n")
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/apt/sources.list").write_text("")
    for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    (rootfs / "etc/resolv.conf").write_text("")
    (rootfs / "etc/machine-id").write_text("")
    with contextlib.suppress(FileNotFoundError):
        (rootfs / "var/lib/dbus/machine-id").unlink()


# ---------------------------------------------------------------- local repository

def ensure_repo() -> float | None:
    """Build the local repository of the role packages and their closure unless it is current."""
    marker = REPO_DIR / ".complete"
    if marker.exists() and json.loads(marker.read_text()).get("key") == repo_key():
        return None
    base, _ = ensure_base()
    t0 = time.monotonic()
    log("building the local repository: role packages and their dependency closure")
    shutil.rmtree(REPO_DIR, ignore_errors=True)
    REPO_DIR.mkdir(parents=True)
    work = CACHE_DIR / "repo-build"
    shutil.rmtree(work, ignore_errors=True)
    for d in ("upper", "work", "root"):
        (work / d).mkdir(parents=True)
    roles = " ".join(REPO_PACKAGES)
    # The closure of each role alone as well as of all together: apt may pick other
    # alternatives (an MTA, say) when a node installs one role only.
    script = (
        f"printf '%s' '{_apt_sources()}' > /etc/apt/sources.list\n"
        "apt-get update -q\n"
        "mkdir -p /lab-repo/partial\n"
        "DL='-o Dir::Cache::archives=/lab-repo'\n"
        f"apt-get install -y -q --download-only $DL {roles}\n"
        f"for p in {roles}; do apt-get install -y -q --download-only $DL $p; done\n"
        f"cd /lab-repo && apt-get download -q {roles}\n"
    )
    try:
        chroot_script(work / "root", script, overlay_lower=base, binds={"/lab-repo": REPO_DIR})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for leftover in ("partial", "lock"):
        p = REPO_DIR / leftover
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    index = run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=REPO_DIR)
    (REPO_DIR / "Packages").write_text(index.stdout)
    run(["gzip", "-9kf", REPO_DIR / "Packages"])
    took = time.monotonic() - t0
    count = len(list(REPO_DIR.glob("*.deb")))
    size = sum(p.stat().st_size for p in REPO_DIR.glob("*.deb")) / 2**20
    marker.write_text(json.dumps({"key": repo_key(), "seconds": round(took, 1), "debs": count,
                                  "mib": round(size, 1)}))
    log(f"repository built in {took:.1f} s: {count} packages, {size:.0f} MiB")
    return took


def build_cache() -> dict:
    """Build the base rootfs and the repository if needed; return build times (None = cached)."""
    with lab_lock():
        t0 = time.monotonic()
        _, base_s = ensure_base()
        repo_s = ensure_repo()
        return {"base_seconds": base_s, "repo_seconds": repo_s,
                "total_seconds": round(time.monotonic() - t0, 1)}


# ---------------------------------------------------------------- processes

def _proc_stat(pid: int) -> tuple[str, int] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int | None, needle: str) -> bool:
    """True when pid runs (not a zombie) and its command line holds needle (guards pid reuse)."""
    if not pid:
        return False
    st = _proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return any(needle in arg for arg in _cmdline(pid))


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st:
                kids.setdefault(st[1], []).append(int(entry))
    return kids


def _nspid_is_init(pid: int) -> bool:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) > 1 and ids[-1] == "1"
    except OSError:
        pass
    return False


def node_inits() -> dict[str, int]:
    """Host pids of the PID 1 of every lab node, found by their overlay root (orphans included)."""
    marker = f"upperdir={RUN_DIR}/nodes/"
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not _nspid_is_init(int(entry)):
            continue
        try:
            mounts = Path(f"/proc/{entry}/mountinfo").read_text()
        except OSError:
            continue
        for line in mounts.splitlines():
            fields = line.split()
            if len(fields) > 4 and fields[4] == "/" and marker in line:
                name = line.split(marker, 1)[1].split("/", 1)[0]
                found.setdefault(name, int(entry))
                break
    return found


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


# ---------------------------------------------------------------- nodes

@dataclass
class Node:
    """One lab node: a booted Debian 12 system with its own network namespace."""

    name: str
    address: str
    root_password: str
    pid: int | None = None
    started_at: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def init(self) -> str:
        """`systemd` (booted with systemd as its init) or `sysv` (a shell init running the init scripts)."""
        return self.extra.get("init", "systemd")

    @property
    def dir(self) -> Path:
        """Runtime directory of this node (overlay layers and log)."""
        return RUN_DIR / "nodes" / self.name

    @property
    def root(self) -> Path:
        """The node's root filesystem as seen from the host (the overlay mount)."""
        return self.dir / "merged"

    @property
    def host_veth(self) -> str:
        """Host end of the node's veth pair, a port of the lab bridge."""
        if len(self.name) <= 12:
            return "vb-" + self.name
        out = run(self.exec_argv(["ip", "-o", "link", "show", "host0"], mount=False)).stdout
        peer = out.split(":")[1].strip().split("@if")[1]
        for line in run(["ip", "-o", "link", "show"]).stdout.splitlines():
            if line.split(":")[0].strip() == peer:
                return line.split(":")[1].strip().split("@")[0]
        raise LabError(f"no host-side veth found for {self.name}")

    def running(self) -> bool:
        """True while the node's systemd-nspawn runs."""
        return _alive(self.pid, str(self.root))

    def leader_pid(self) -> int:
        """Host pid of the node's PID 1 (its systemd)."""
        if not self.running():
            # This Node may be a stale snapshot of a node the lab has restarted since.
            pid = node_inits().get(self.name)
            if pid:
                return pid
            raise LabError(f"node {self.name} is not running")
        kids = _children_map()
        todo = list(kids.get(self.pid, []))
        while todo:
            p = todo.pop(0)
            if _nspid_is_init(p):
                return p
            todo.extend(kids.get(p, []))
        pid = node_inits().get(self.name)
        if pid:
            return pid
        raise LabError(f"node {self.name} has no init process yet")

    def exec_argv(self, cmd: list[str], *, mount: bool = True) -> list[str]:
        """nsenter command line that runs cmd as root in the node (only its netns when not mount)."""
        ns = ["-m", "-u", "-i", "-n", "-p", "-r", "-w"] if mount else ["-n"]
        pre = ["env", "-i", f"PATH={NODE_PATH}", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"] if mount else []
        return ["nsenter", "-t", str(self.leader_pid()), *ns, *pre, *cmd]

    def exec(self, cmd, *, check: bool = True, input: str | None = None,
             timeout: float | None = 600) -> subprocess.CompletedProcess:
        """Run cmd (a list, or a string for /bin/sh -c) as root inside the node; return its result."""
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        res = subprocess.run(self.exec_argv(argv), input=input, capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise LabError(f"{self.name}: {argv} exited {res.returncode}:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
        return res

    def cut(self) -> None:
        """Hard-cut the node's link: its host-side veth goes down (the node keeps its address)."""
        run(["ip", "link", "set", self.host_veth, "down"])

    def heal(self) -> None:
        """Bring the node's link back up."""
        run(["ip", "link", "set", self.host_veth, "up"])

    def is_cut(self) -> bool:
        """True when the node's link is cut."""
        out = run(["ip", "-o", "link", "show", self.host_veth], check=False).stdout
        flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
        return bool(out) and "UP" not in flags

    def systemctl(self, action: str, unit: str, *, check: bool = True) -> subprocess.CompletedProcess:
        """Run systemctl action unit in the node (e.g. stop/start its agent)."""
        return self.exec(["systemctl", action, unit], check=check)

    def ssh_argv(self, *cmd: str) -> list[str]:
        """ssh command line that logs in to the node as root with the lab's helper key."""
        return ["ssh", "-i", str(SSH_KEY), *HELPER_SSH_OPTS, f"root@{self.address}", *cmd]

    def memory_kib(self) -> int:
        """Proportional set size of all processes in the node, in KiB."""
        ns = _pid_ns(self.leader_pid())
        total = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _pid_ns(int(entry)) == ns:
                with contextlib.suppress(OSError):
                    for line in Path(f"/proc/{entry}/smaps_rollup").read_text().splitlines():
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
        return total

    def to_json(self) -> dict:
        """State of the node for the state file."""
        return {"name": self.name, "address": self.address, "root_password": self.root_password,
                "pid": self.pid, "started_at": self.started_at, **self.extra}

    @classmethod
    def from_json(cls, data: dict) -> Node:
        """Node from its state-file entry."""
        d = dict(data)
        known = {k: d.pop(k) for k in ("name", "address", "root_password", "pid", "started_at") if k in d}
        return cls(**known, extra=d)


def ssh_banner(address: str, port: int = 22, timeout: float = 2.0) -> str | None:
    """The SSH identification line the server at address sends, or None."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            data = s.recv(256)
    except OSError:
        return None
    line = data.decode(errors="replace").strip()
    return line if line.startswith("SSH-") else None


# ---------------------------------------------------------------- the lab

class Lab:
    """A running (or not yet running) lab, described by the state file in RUN_DIR."""

    def __init__(self) -> None:
        self.state: dict = {}
        self.load()

    def load(self) -> None:
        """Read the state file, if any."""
        try:
            self.state = json.loads(STATE_FILE.read_text())
        except (OSError, ValueError):
            self.state = {}

    def save(self) -> None:
        """Write the state file atomically (root only: it holds the root passwords)."""
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        tmp = STATE_FILE.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.state, fh, indent=2)
        tmp.replace(STATE_FILE)

    @property
    def nodes(self) -> list[Node]:
        """All nodes of the lab, in order."""
        nodes = [Node.from_json(n) for n in self.state.get("nodes", [])]
        return sorted(nodes, key=lambda n: int(n.address.rsplit(".", 1)[1]))

    def node(self, name: str) -> Node:
        """The node called name (or with that address)."""
        for n in self.nodes:
            if name in (n.name, n.address):
                return n
        raise LabError(f"no node {name!r} in the lab (nodes: {', '.join(n.name for n in self.nodes) or 'none'})")

    @property
    def repo_url(self) -> str:
        """URL of the local Debian repository as nodes see it."""
        return f"http://{HOST_ADDRESS}:{REPO_PORT}/"

    @property
    def repo_line(self) -> str:
        """sources.list line that points a node at the local repository."""
        return f"deb [trusted=yes] {self.repo_url} ./"

    def is_up(self) -> bool:
        """True when the bridge, the repository server and every recorded node run."""
        return (bool(self.state.get("nodes")) and _link_exists(BRIDGE)
                and _alive(self.state.get("repo_pid"), "http.server")
                and all(n.running() for n in self.nodes))

    # -------------------------------------------------- up

    def up(self, n: int) -> dict:
        """Make sure at least n nodes run (building the cache first if needed); return timings."""
        if not 1 <= n <= MAX_NODES:
            raise LabError(f"the lab holds 1 to {MAX_NODES} nodes")
        timings: dict = {}
        with lab_lock():
            self.load()
            self._ensure_infra(timings)
            t1 = time.monotonic()
            nodes = {nd.name: nd for nd in self.nodes}
            started = []
            for i in range(1, n + 1):
                name = f"{NODE_PREFIX}{i}"
                nd = nodes.get(name) or Node(name, f"{NET_PREFIX}{FIRST_NODE_OCTET + i - 1}",
                                             secrets.token_urlsafe(12))
                nodes[name] = nd
                if not nd.running():
                    self._start_node(nd)
                    started.append(nd)
                self.state["nodes"] = [x.to_json() for x in nodes.values()]
                self.save()
            for nd in started:
                self._wait_ssh(nd)
            if started:
                took = time.monotonic() - t1
                timings["warm_start_seconds"] = round(took, 2)
                timings["nodes_started"] = len(started)
                timings["seconds_per_node"] = round(took / len(started), 2)
            self.state["nodes"] = [x.to_json() for x in nodes.values()]
            self.save()
        return timings

    def _ensure_infra(self, timings: dict) -> None:
        """The cache, the bridge, the repository server and the helper key (under the lab lock)."""
        t0 = time.monotonic()
        _, base_s = ensure_base()
        repo_s = ensure_repo()
        if base_s is not None or repo_s is not None:
            timings["cold_build_seconds"] = round(time.monotonic() - t0, 1)
        raise_inotify_limits()
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self._ensure_ssh_key()
        self._ensure_bridge()
        self._ensure_repo_server()

    def infra_up(self) -> bool:
        """True when the bridge and the repository server run (with or without nodes)."""
        return _link_exists(BRIDGE) and _alive(self.state.get("repo_pid"), "http.server")

    def up_sysv(self, index: int = SYSV_INDEX, *, fresh: bool = False) -> Node:
        """Start one node WITHOUT systemd (`hf-sysv<index>` at 198.18.0.(10+index)); fresh: reinstall it first."""
        if not 1 <= index <= MAX_NODES:
            raise LabError(f"the node index must be 1 to {MAX_NODES}")
        with lab_lock():
            self.load()
            self._ensure_infra({})
            name, address = f"{SYSV_PREFIX}{index}", f"{NET_PREFIX}{FIRST_NODE_OCTET + index - 1}"
            nodes = {nd.name: nd for nd in self.nodes}
            taken = next((nd.name for nd in nodes.values() if nd.address == address and nd.name != name), None)
            if taken:
                raise LabError(f"{address} is {taken}'s address: pick another index")
            nd = nodes.get(name) or Node(name, address, secrets.token_urlsafe(12), extra={"init": "sysv"})
            if fresh and nd.name in nodes:
                self._stop_node(nd)
                shutil.rmtree(nd.dir, ignore_errors=True)
            if fresh or not nd.running():
                self._start_node(nd)
            nodes[name] = nd
            self.state["nodes"] = [x.to_json() for x in nodes.values()]
            self.save()
            self._wait_ssh(nd)
            return nd

    def remove_node(self, name: str) -> None:
        """Stop one node and forget it (its layer deleted); the rest of the lab keeps running."""
        with lab_lock():
            self.load()
            nd = self.node(name)
            self._stop_node(nd)
            shutil.rmtree(nd.dir, ignore_errors=True)
            self.state["nodes"] = [x.to_json() for x in self.nodes if x.name != nd.name]
            self.save()

    def recreate(self, name: str, *, new_password: bool = False) -> Node:
        """Reinstall a node from the base: new host keys and machine-id (as a reinstalled server)."""
        with lab_lock():
            self.load()
            nd = self.node(name)
            self._stop_node(nd)
            shutil.rmtree(nd.dir, ignore_errors=True)
            if new_password:
                nd.root_password = secrets.token_urlsafe(12)
            self._start_node(nd)
            self.state["nodes"] = [nd.to_json() if x.name == nd.name else x.to_json() for x in self.nodes]
            self.save()
            self._wait_ssh(nd)
            return nd

    def _ensure_ssh_key(self) -> None:
        if not SSH_KEY.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostfleet-lab", "-f", SSH_KEY])
        self.state["ssh_key"] = str(SSH_KEY)

    def _ensure_bridge(self) -> None:
        if not _link_exists(BRIDGE):
            run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        addrs = run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
        if f"{HOST_ADDRESS}/24" not in addrs:
            run(["ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])
        self.state["bridge"] = BRIDGE
        self.state["host_address"] = HOST_ADDRESS
        if shutil.which("nft"):
            # Nothing from the lab is ever routed off the bridge, even if the host forwards.
            run(["nft", "-f", "-"], input=(
                f"table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n"
                f"table inet {NFT_TABLE} {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n"
                f'  iifname "{BRIDGE}" oifname != "{BRIDGE}" drop\n'
                f'  oifname "{BRIDGE}" iifname != "{BRIDGE}" drop\n }}\n}}\n'))
            self.state["nft_table"] = NFT_TABLE

    def _ensure_repo_server(self) -> None:
        pid = self.state.get("repo_pid")
        if _alive(pid, "http.server") and port_open(HOST_ADDRESS, REPO_PORT):
            return
        strays = _repo_server_pids()
        if strays and port_open(HOST_ADDRESS, REPO_PORT):
            self.state.update(repo_pid=strays[0], repo_url=self.repo_url, repo_line=self.repo_line)
            return
        logf = open(RUN_DIR / "repo-http.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(REPO_PORT), "--bind", HOST_ADDRESS,
             "--directory", str(REPO_DIR)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            cwd="/")
        logf.close()
        self.state["repo_pid"] = proc.pid
        self.state["repo_url"] = self.repo_url
        self.state["repo_line"] = self.repo_line
        deadline = time.monotonic() + 15
        while not port_open(HOST_ADDRESS, REPO_PORT):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"repository server did not start: see {RUN_DIR / 'repo-http.log'}")
            time.sleep(0.1)

    def _start_node(self, nd: Node) -> None:
        d = nd.dir
        # A node whose nspawn died keeps running as an orphan with its veth: stop it first.
        if nd.pid or nd.name in node_inits():
            self._stop_node(nd)
        if len(nd.name) <= 12 and _link_exists("vb-" + nd.name):
            run(["ip", "link", "del", "vb-" + nd.name], check=False)
        for sub in ("upper", "work", "merged"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        fresh = not (d / "upper/etc/hostname").exists()
        if not os.path.ismount(nd.root):
            run(["mount", "-t", "overlay", "overlay", "-o",
                 f"lowerdir={base_dir()},upperdir={d / 'upper'},workdir={d / 'work'}", nd.root])
        if fresh:
            self._personalize(nd)
        logf = open(d / "console.log", "ab")
        # A node without systemd: nspawn's stub as PID 1, the lab's shell init as PID 2 (no --boot).
        how = ["--as-pid2"] if nd.init == "sysv" else ["--boot"]
        proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", *how, "--register=no", "--keep-unit",
             f"--machine={nd.name}", f"--directory={nd.root}", f"--network-bridge={BRIDGE}",
             "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=read-only",
             *([SYSV_INIT] if nd.init == "sysv" else [])],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            cwd="/")
        logf.close()
        nd.pid = proc.pid
        nd.started_at = time.time()

    def _personalize(self, nd: Node) -> None:
        r = nd.root
        (r / "etc/hostname").write_text(nd.name + "\n")
        (r / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n{nd.address}\t{nd.name}\n"
                                     "::1\tlocalhost ip6-localhost ip6-loopback\n")
        (r / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
        (r / "etc/systemd/network/10-hostfleet-lab.network").write_text(
            "[Match]\nName=host0\n\n[Network]\n"
            f"Address={nd.address}/24\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
            # Without these the node drops its address when its link is cut and stays unreachable after heal.
            "ConfigureWithoutCarrier=yes\nIgnoreCarrierLoss=yes\n")
        ssh_dir = r / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(str(SSH_KEY) + ".pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        # No RSA host key: generating one costs about a second of CPU per node.
        for kind in ("ed25519", "ecdsa"):
            key = r / f"etc/ssh/ssh_host_{kind}_key"
            if not key.exists():
                run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{nd.name}", "-f", key])
        run(["chroot", r, "/usr/sbin/chpasswd"], input=f"root:{nd.root_password}\n")
        if nd.init == "sysv":
            init = r / SYSV_INIT.lstrip("/")
            init.write_text(SYSV_INIT_TEXT.format(address=nd.address))
            init.chmod(0o755)

    def _wait_ssh(self, nd: Node, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not nd.running():
                seen = (_proc_stat(nd.pid), _cmdline(nd.pid)[:2])
                time.sleep(0.5)  # seen once not running with an empty console: look again before giving up
                if not nd.running():
                    tail = (nd.dir / "console.log").read_text(errors="replace")[-2000:]
                    raise LabError(f"node {nd.name} exited while booting (pid {nd.pid}: state and command "
                                   f"{seen}, then {(_proc_stat(nd.pid), _cmdline(nd.pid)[:2])}):\n{tail}")
            if ssh_banner(nd.address, timeout=1):
                return
            time.sleep(0.2)
        raise LabError(f"sshd of {nd.name} did not answer on {nd.address}:22 in {timeout:.0f} s "
                       f"(console: {nd.dir / 'console.log'})")

    # -------------------------------------------------- down

    def _stop_node(self, nd: Node, grace: float = 10) -> None:
        self._stop_many([nd], grace)

    def _stop_many(self, nodes: list[Node], grace: float = 10) -> None:
        inits = node_inits()
        names = {nd.name for nd in nodes}
        for nd in nodes:
            if nd.running():
                # SIGTERM makes nspawn power the node off cleanly.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(nd.pid, signal.SIGTERM)
            elif nd.name in inits:
                # An orphaned node (its nspawn died): SIGRTMIN+4 asks its systemd to power off.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(inits[nd.name], signal.SIGRTMIN + 4)

        def busy() -> bool:
            for nd in nodes:
                _reap(nd.pid or 0)
            return any(nd.running() for nd in nodes) or bool(names & node_inits().keys())

        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and busy():
            time.sleep(0.2)
        if busy():
            left = node_inits()
            for nd in nodes:
                for pid in (left.get(nd.name), nd.pid if nd.running() else None):
                    if pid:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and busy():
                time.sleep(0.1)
        for nd in nodes:
            _reap(nd.pid or 0)
            if os.path.ismount(nd.root):
                # nspawn names its image lock after the root's device and inode; a killed nspawn leaves it.
                st = os.stat(nd.root)
                with contextlib.suppress(FileNotFoundError):
                    (NSPAWN_RUN / "locks" / f"inode-{st.st_dev}:{st.st_ino}").unlink()
            _umount_under(nd.dir)
            # nspawn leaves its per-machine propagation directory on the host.
            shutil.rmtree(NSPAWN_RUN / "propagate" / nd.name, ignore_errors=True)

    def down(self) -> None:
        """Stop every node and the repository server; remove mounts, bridge, nft table, runtime dir."""
        with lab_lock():
            self.load()
            nodes = self.nodes
            # Nodes whose state entry was lost are still found by their root path on the command line.
            known = {nd.pid for nd in nodes}
            for pid in _pids_with_arg(f"--directory={RUN_DIR}/nodes/"):
                if pid not in known:
                    arg = next(a for a in _cmdline(pid) if a.startswith("--directory="))
                    name = Path(arg.split("=", 1)[1]).parent.name
                    nodes.append(Node(name, "", "", pid=pid))
            for name in node_inits().keys() - {nd.name for nd in nodes}:
                nodes.append(Node(name, "", ""))
            self._stop_many(nodes)
            servers = {self.state.get("repo_pid")} | set(_repo_server_pids())
            for pid in servers:
                if _alive(pid, "http.server"):
                    os.kill(pid, signal.SIGTERM)
                    for _ in range(50):
                        _reap(pid)
                        if not _alive(pid, "http.server"):
                            break
                        time.sleep(0.1)
            _umount_under(RUN_DIR)
            if _link_exists(BRIDGE):
                run(["ip", "link", "del", BRIDGE])
            if shutil.which("nft"):
                run(["nft", "delete", "table", "inet", NFT_TABLE], check=False)
            shutil.rmtree(RUN_DIR, ignore_errors=True)
            for d in (NSPAWN_RUN / "propagate", NSPAWN_RUN / "locks", NSPAWN_RUN):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                RUN_DIR.parent.rmdir()
            self.state = {}

    # -------------------------------------------------- status

    def status(self) -> dict:
        """Describe the lab: bridge, repository and each node's state."""
        self.load()
        nodes = []
        for nd in self.nodes:
            entry = {"name": nd.name, "address": nd.address, "root_password": nd.root_password,
                     "running": nd.running()}
            if entry["running"]:
                entry["ssh"] = bool(ssh_banner(nd.address, timeout=1))
                with contextlib.suppress(LabError):
                    entry["link"] = "cut" if nd.is_cut() else "up"
                with contextlib.suppress(LabError, OSError):
                    entry["memory_mib"] = round(nd.memory_kib() / 1024, 1)
            nodes.append(entry)
        return {
            "up": self.is_up(), "bridge": BRIDGE if _link_exists(BRIDGE) else None,
            "host_address": HOST_ADDRESS, "repo_url": self.repo_url, "repo_line": self.repo_line,
            "repo_server": _alive(self.state.get("repo_pid"), "http.server"),
            "ssh_key": str(SSH_KEY) if SSH_KEY.exists() else None, "nodes": nodes,
        }


def port_open(address: str, port: int) -> bool:
    """True when something accepts TCP connections at address:port."""
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _pids_with_arg(prefix: str) -> list[int]:
    return [int(e) for e in os.listdir("/proc")
            if e.isdigit() and any(a.startswith(prefix) for a in _cmdline(int(e)))
            and "systemd-nspawn" in (_cmdline(int(e)) or [""])[0]]


def _repo_server_pids() -> list[int]:
    """Repository servers the lab started, found by their exact command line (state may be lost)."""
    pids = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            cmd = _cmdline(int(e))
            if "http.server" in cmd and str(REPO_DIR) in cmd and HOST_ADDRESS in cmd:
                pids.append(int(e))
    return pids


def _umount_under(path: Path) -> None:
    """Unmount everything mounted at or below path, deepest first."""
    prefix = str(path.resolve()) if path.exists() else str(path)
    targets = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].replace("\\040", " ")
        if mp == prefix or mp.startswith(prefix + "/"):
            targets.append(mp)
    for mp in sorted(set(targets), key=len, reverse=True):
        if run(["umount", mp], check=False).returncode != 0:
            run(["umount", "-l", mp], check=False)
