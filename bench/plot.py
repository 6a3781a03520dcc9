"""Plot fan-out time against the number of nodes for Hostfleet, Ansible and pyinfra (bench/results → PNG).

Reads the newest bench/results/<date>.json (compare_bench.py: the three tools on lab nodes) and
<date>-fanout.json (fanout_bench.py: Hostfleet's distributed request to loopback agents) and writes
bench/results/fanout.png. Runs with the comparison tools' virtualenv, which has matplotlib:

    $(python bench/compare_bench.py --venv)/bin/python bench/plot.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def newest(pattern: str) -> dict | None:
    """The newest results file matching pattern, decoded (None when there is none)."""
    files = sorted(RESULTS.glob(pattern))
    return json.loads(files[-1].read_text()) if files else None


def main() -> int:
    """Draw the plot; say what was drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compare = newest("????-??-??.json")
    fanout = newest("????-??-??-fanout.json")
    if not compare and not fanout:
        print("no results in bench/results: run bench/compare_bench.py and bench/fanout_bench.py first")
        return 1
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    if compare:
        runs = sorted(compare["compare"], key=lambda r: r["size"])
        sizes = [r["size"] for r in runs]
        for key, label, style in (("hostfleet_change", "Hostfleet (lab nodes, API call → all confirmed)", "o-"),
                                  ("ansible_change", "Ansible (forks = nodes, pipelining, ControlPersist)", "s-"),
                                  ("pyinfra_change", "pyinfra (--parallel = nodes)", "^-")):
            medians = [r[key]["median"] for r in runs]
            lows = [r[key]["median"] - r[key]["min"] for r in runs]
            highs = [r[key]["max"] - r[key]["median"] for r in runs]
            ax.errorbar(sizes, medians, yerr=[lows, highs], fmt=style, capsize=3, label=label)
        ax.plot(sizes, [r["limit_s"] for r in runs], "k*:", label="limit: max node apply + round trip")
    if fanout:
        points = sorted(fanout["fanout"], key=lambda p: p["size"])
        ax.plot([p["size"] for p in points], [p["wall_s"] for p in points], "o--",
                label="Hostfleet (loopback agents, distributed request only)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes")
    ax.set_ylabel("seconds per change (median, min–max)")
    ax.set_title("One cluster-wide change: time against the number of nodes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = RESULTS / "fanout.png"
    fig.savefig(out)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
