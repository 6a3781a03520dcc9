"""Time the agent's ops on 1,000 web domains and 1,000 zones (render + check + write), and RSS.

Run: .venv/bin/python bench/agent_ops_bench.py [count]. Uses a private root prefix and a no-op
reload, so it needs nginx and bind9-utils installed but touches nothing outside a temp folder.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_rss import vm_rss_mib  # noqa: E402

from agent.ops import dns, web  # noqa: E402
from agent.tests.ops_helpers import make_config  # noqa: E402


def timed(label: str, action) -> float:
    """Run action once and print how long it took."""
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {elapsed:8.2f} s   changed={result.changed}")
    return elapsed


def main() -> None:
    """Apply, re-apply and change one item of each list; print the figures."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        config, _ = make_config(Path(tmp))
        config.reload_commands.clear()
        sites = [{"name": f"site{i}.example.com", "owner": "alice" if i % 2 else "bob",
                  "aliases": [f"www.site{i}.example.com"], "php": i % 3 == 0}
                 for i in range(count)]
        zones = [{"name": f"zone{i}.example.net", "owner": "alice", "ip": "192.0.2.1"}
                 for i in range(count)]
        print(f"agent ops bench: {count} web domains, {count} zones")
        timed(f"web: apply {count} domains", lambda: web.replace_all(config, sites))
        timed("web: no-op re-apply", lambda: web.replace_all(config, sites))
        sites[0]["php"] = not sites[0]["php"]
        timed("web: change one domain", lambda: web.replace_all(config, sites))
        timed(f"dns: apply {count} zones", lambda: dns.replace_all(config, zones))
        timed("dns: no-op re-apply", lambda: dns.replace_all(config, zones))
        zones[0]["ip"] = "192.0.2.2"
        timed("dns: change one zone", lambda: dns.replace_all(config, zones))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'RSS after (MiB)':<44} {vm_rss_mib(os.getpid()):8.1f}   peak {peak:.1f}")


if __name__ == "__main__":
    main()
