"""Idle resident memory of a real agent process after a burst of signed stats calls."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.client import AgentClient, AgentError  # noqa: E402
from agent.config import initialize  # noqa: E402

TARGET_MIB = 40


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vm_rss_mib(pid: int) -> float:
    """VmRSS of pid in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_until_serving(client: AgentClient, process: subprocess.Popen, timeout_s: float = 15) -> None:
    """Poll until a signed stats call succeeds (refused for the first second: see signing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError("agent exited during start-up")
        try:
            client.stats()
            return
        except AgentError as exc:
            if exc.kind not in ("unreachable", "auth") or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def main() -> int:
    """Start an agent, make the calls, settle, print VmRSS; exit 1 if over the target."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20, help="signed stats calls to make (default 20)")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before measuring (default 1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agent-rss-") as tmp:
        base = Path(tmp)
        port = free_port()
        result = initialize(
            base / "agent.json",
            root=base / "root",
            state_dir=base / "state",
            secret_file=base / "secret",
            listen_host="127.0.0.1",
            listen_port=port,
            roles=["web", "dns", "mail"],
            hostnames=["localhost"],
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "serve", "--config", str(base / "agent.json")],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = AgentClient(
                f"https://127.0.0.1:{port}", (base / "secret").read_text().strip(), result["fingerprint"]
            )
            wait_until_serving(client, process)
            for _ in range(args.calls):
                client.stats()
            client.close()
            time.sleep(args.settle)
            rss = vm_rss_mib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)
    verdict = "ok" if rss < TARGET_MIB else "OVER TARGET"
    print(f"agent idle RSS after {args.calls} signed stats calls: {rss:.1f} MiB (target < {TARGET_MIB} MiB, {verdict})")
    return 0 if rss < TARGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
