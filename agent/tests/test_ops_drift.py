"""Drift: a list's files (or the loaded nft table) changed behind the agent's back show in /v1/stats."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.ops import cron, firewall
from agent.routes.lists import DRIFT_HASH, held_lists
from agent.tests.ops_helpers import envelope, make_config

CRON_ROWS = [{"id": 1, "schedule": "*/5 * * * *", "user": "root", "command": "/usr/bin/true", "comment": "",
              "enabled": True}]
FIREWALL_ROWS = [{"id": 1, "action": "accept", "protocol": "tcp", "ports": "80,443", "source": "", "comment": "web"}]


@pytest.mark.parametrize(
    "name, replace, rows, path",
    [
        ("scheduler", cron.replace, CRON_ROWS, cron.CRON_FILE),
        ("firewall", firewall.replace, FIREWALL_ROWS, firewall.RULESET),
    ],
)
def test_edited_file_reports_drift_and_a_repush_repairs_it(tmp_path, name, replace, rows, path):
    config, _ = make_config(tmp_path, reload_commands={})
    version, content_hash, rows = envelope(rows)
    replace(config, version, content_hash, rows)
    assert held_lists(config)[name] == {"version": 1, "hash": content_hash}
    target = config.root / path
    original = target.read_bytes()
    target.write_bytes(original + b"# edited by hand\n")
    assert held_lists(config)[name]["hash"] == DRIFT_HASH
    assert target.read_bytes().endswith(b"# edited by hand\n"), "a drift check changes nothing"
    replace(config, version, content_hash, rows)
    assert target.read_bytes() == original
    assert held_lists(config)[name] == {"version": 1, "hash": content_hash}


def test_deleted_file_reports_drift(tmp_path):
    config, _ = make_config(tmp_path, reload_commands={})
    cron.replace(config, *envelope(CRON_ROWS))
    (config.root / cron.CRON_FILE).unlink()
    assert held_lists(config)["scheduler"]["hash"] == DRIFT_HASH


NETNS_SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from agent.tests.ops_helpers import envelope, make_config
    from agent.ops import firewall
    from agent.routes.lists import held_lists
    config, _ = make_config(Path(sys.argv[2]), reload_commands={})
    config.reload_commands["firewall"] = ["nft", "-f", str(config.root / firewall.RULESET)]
    rows = json.loads(sys.argv[3])
    firewall.replace(config, *envelope(rows))
    seen = {"applied": held_lists(config)["firewall"]["hash"]}
    subprocess.run(["nft", "flush", "table", "inet", "hostfleet"], check=True)
    seen["flushed"] = held_lists(config)["firewall"]["hash"]
    seen["rules_after_flush"] = subprocess.run(["nft", "list", "table", "inet", "hostfleet"],
                                               capture_output=True, text=True).stdout.count("dport")
    firewall.replace(config, *envelope(rows))
    seen["repaired"] = held_lists(config)["firewall"]["hash"]
    seen["rules_after_repair"] = subprocess.run(["nft", "list", "table", "inet", "hostfleet"],
                                                capture_output=True, text=True).stdout.count("dport")
    print(json.dumps(seen))
    """
)


def test_flushed_nft_table_reports_drift_and_is_reloaded(tmp_path):
    """In a private netns: `nft flush table inet hostfleet` is drift; the re-push loads the table again."""
    if shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.skip("nft or unshare is not installed (make test installs nftables as root)")
    repo = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", NETNS_SCRIPT, repo, str(tmp_path), json.dumps(FIREWALL_ROWS)],
        capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip(f"cannot create a network namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    list_hash = envelope(FIREWALL_ROWS)[1]
    assert seen["applied"] == list_hash
    assert seen["flushed"] == DRIFT_HASH and seen["rules_after_flush"] == 0
    assert seen["repaired"] == list_hash and seen["rules_after_repair"] == 1
