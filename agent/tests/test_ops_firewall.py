"""Firewall list: nft -c accepts what we render, lock-out refusal, rollback, idempotence."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from agent import liststate
from agent.ops import apply, firewall
from agent.tests.ops_helpers import config_digest, envelope, make_config, nft_usable
from agent.validation import ValidationError

NFT_REASON = nft_usable()
needs_nft = pytest.mark.skipif(NFT_REASON is not None, reason=NFT_REASON or "")

RULES = [
    {"id": 1, "action": "accept", "protocol": "tcp", "ports": "80,443", "source": "", "comment": "web"},
    {"id": 2, "action": "drop", "protocol": "tcp", "ports": "1000-2000", "source": "10.0.0.0/8",
     "comment": ""},
    {"id": 3, "action": "reject", "protocol": "udp", "ports": "53", "source": "2001:db8::/32",
     "comment": "no dns"},
    {"id": 4, "action": "drop", "protocol": "icmp", "ports": "", "source": "192.0.2.0/24",
     "comment": ""},
    {"id": 5, "action": "accept", "protocol": "any", "ports": "5000-5001", "source": "",
     "comment": ""},
]


@pytest.fixture
def agent(tmp_path):
    """A config under a private root; the firewall 'reload' is recorded, never applied."""
    return make_config(tmp_path)


@needs_nft
@pytest.mark.parametrize("count", [0, 1, len(RULES)])
def test_rendered_rules_pass_nft_check(agent, count):
    """Every rule shape renders into a ruleset that nft -c accepts, and the load is run once."""
    config, reloads = agent
    result = firewall.replace(config, *envelope(RULES[:count]))
    assert result["changed"] is True
    text = (config.root / firewall.RULESET).read_text()
    assert "delete table inet hostfleet" in text
    assert reloads.calls() == ["firewall"]
    assert liststate.read_all(config.state_dir)["firewall"]["hash"] == liststate.list_hash(RULES[:count])


@needs_nft
def test_same_list_twice_writes_and_reloads_nothing(agent):
    """A repeated replace is a no-op: no write, no reload, changed false."""
    config, reloads = agent
    firewall.replace(config, *envelope(RULES))
    before = config_digest(config)
    again = firewall.replace(config, *envelope(RULES))
    assert again["changed"] is False
    assert reloads.calls() == ["firewall"]
    assert config_digest(config) == before


@needs_nft
def test_new_version_same_rows_records_version_without_reload(agent):
    """A higher version with the same rows is recorded but nothing is reloaded."""
    config, reloads = agent
    firewall.replace(config, *envelope(RULES, version=1))
    firewall.replace(config, *envelope(RULES, version=2))
    assert apply.read_list(config, "firewall")["version"] == 2
    assert reloads.calls() == ["firewall"]


@needs_nft
def test_reload_failure_restores_previous_ruleset(agent):
    """A failing nft load puts the previous file back, loads it again and reports the error."""
    config, reloads = agent
    firewall.replace(config, *envelope(RULES[:1]))
    path = config.root / firewall.RULESET
    previous = path.read_bytes()
    reloads.fail()
    with pytest.raises(apply.ReloadFailed, match="reload of firewall failed"):
        firewall.replace(config, *envelope(RULES, version=2))
    assert path.read_bytes() == previous
    assert reloads.calls() == ["firewall", "firewall", "firewall"]
    assert apply.read_list(config, "firewall")["version"] == 1


@needs_nft
def test_checker_message_returned_and_files_back(agent, monkeypatch):
    """A ruleset nft refuses (broken template) comes back with nft's message; old file kept."""
    config, reloads = agent
    firewall.replace(config, *envelope(RULES[:1]))
    path = config.root / firewall.RULESET
    previous = path.read_bytes()
    monkeypatch.setattr(firewall, "_match_text", lambda rule: "tcp dport { bogus-port } ")
    with pytest.raises(apply.CheckFailed) as caught:
        firewall.replace(config, *envelope(RULES, version=2))
    assert "Error" in caught.value.message or "error" in caught.value.message
    assert path.read_bytes() == previous
    assert reloads.calls() == ["firewall"]


@pytest.mark.parametrize(
    "rule, masters, message",
    [
        ({"action": "drop", "protocol": "tcp", "ports": "22", "source": ""}, [], "SSH"),
        ({"action": "reject", "protocol": "any", "ports": "", "source": "0.0.0.0/0"}, [], "SSH"),
        ({"action": "drop", "protocol": "tcp", "ports": "8000-9000", "source": ""}, [],
         "agent's port"),
        ({"action": "drop", "protocol": "tcp", "ports": "", "source": "203.0.113.0/24"},
         ["203.0.113.7"], "the master (203.0.113.7)"),
    ],
)
def test_rules_that_cut_the_master_are_refused(agent, rule, masters, message):
    """A drop/reject catching SSH or the agent port from the master is refused, naming the row."""
    config, _ = agent
    rows = [{"id": 1, "action": "accept", "protocol": "udp", "ports": "53", "source": "",
             "comment": ""}, {"id": 2, "comment": "", **rule}]
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        firewall.replace(config, *envelope(rows), masters=masters)
    assert caught.value.field == "rows[1]"
    assert message in caught.value.message
    assert config_digest(config) == before


def test_accept_before_drop_keeps_the_master_in(agent):
    """A drop-all after an accept for the master's network is allowed."""
    config, _ = agent
    rows = [
        {"id": 1, "action": "accept", "protocol": "tcp", "ports": "", "source": "203.0.113.0/24",
         "comment": ""},
        {"id": 2, "action": "drop", "protocol": "tcp", "ports": "", "source": "", "comment": ""},
    ]
    rules = [firewall.validate_row(r) for r in rows]
    firewall.check_lockout(rules, config.listen_port, ["203.0.113.7"])


def test_hash_must_match_rows(agent):
    """A replace whose hash is not the rows' hash is refused before anything is written."""
    config, _ = agent
    version, content_hash, _rows = envelope(RULES)
    with pytest.raises(ValidationError) as caught:
        firewall.replace(config, version, content_hash, RULES[:1])
    assert caught.value.field == "hash"


NETNS_SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from agent.tests.ops_helpers import envelope, make_config
    from agent.ops import firewall
    config, _ = make_config(Path(sys.argv[2]))
    rules = json.loads(sys.argv[3])
    config.reload_commands["firewall"] = ["nft", "-f", str(config.root / firewall.RULESET)]
    firewall.replace(config, *envelope(rules))
    firewall.replace(config, *envelope(rules[:2], version=2))
    out = subprocess.run(["nft", "-j", "list", "table", "inet", "hostfleet"],
                         capture_output=True, text=True, check=True).stdout
    text = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    print(json.dumps({"json": json.loads(out), "text": text}))
    """
)


@needs_nft
def test_apply_in_private_network_namespace(tmp_path):
    """In a fresh netns the list is loaded for real, replaced atomically and read back."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    repo = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", NETNS_SCRIPT, repo, str(tmp_path),
         json.dumps(RULES)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip(f"cannot create a network namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    rules = [item["rule"] for item in found["json"]["nftables"] if "rule" in item]
    # Two list rules plus the fixed established and loopback accepts: the old rules are gone.
    assert len(rules) == 4
    assert "tcp dport { 80, 443 } accept" in found["text"]
    assert "ip saddr 10.0.0.0/8 tcp dport 1000-2000 drop" in found["text"]
    assert found["text"].count("table inet hostfleet") == 1


@needs_nft
def test_closed_loopback_renders_an_output_chain_nft_accepts(tmp_path):
    """With closed_loopback_uids the table gains an output chain for that UID range; nft -c accepts it,
    and a config without the setting renders no output chain at all."""
    config, _ = make_config(tmp_path, closed_loopback_uids=[10000, 59999])
    firewall.replace(config, *envelope(RULES))
    text = (config.root / firewall.RULESET).read_text()
    assert "hook output" in text and "meta skuid 10000-59999 ip daddr 127.0.0.0/8 reject" in text
    assert "meta skuid 10000-59999 ip6 daddr ::1 reject" in text
    other, _ = make_config(tmp_path / "other")
    firewall.replace(other, *envelope(RULES))
    assert "hook output" not in (other.root / firewall.RULESET).read_text()


@pytest.mark.parametrize("uids", [[0, 59999], [999, 2000], [2000, 1000], [1000], "1000-2000", [1000.0, 2000],
                                  [True, 2000], [1000, 2**31]])
def test_closed_loopback_never_covers_system_accounts(tmp_path, uids):
    """root, www-data and the other system accounts keep loopback: a range reaching below 1000 (or not a
    range) is a configuration error when the agent loads its config."""
    from agent.config import ConfigError

    with pytest.raises(ConfigError, match="closed_loopback_uids"):
        make_config(tmp_path, closed_loopback_uids=uids)


LOOPBACK_SCRIPT = textwrap.dedent(
    """
    import json, os, socket, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from agent.tests.ops_helpers import envelope, make_config
    from agent.ops import firewall
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    closed = json.loads(sys.argv[3])
    config, _ = make_config(Path(sys.argv[2]), closed_loopback_uids=closed)
    config.reload_commands["firewall"] = ["nft", "-f", str(config.root / firewall.RULESET)]
    firewall.replace(config, *envelope([]))
    listeners = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "127.0.0.2"), (socket.AF_INET6, "::1")):
        for port in (6379, 53):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(8)
            listeners.append(sock)

    def reach(uid, address, port):
        pid = os.fork()
        if pid == 0:
            os.setgid(uid)
            os.setuid(uid)
            try:
                socket.create_connection((address, port), timeout=2).close()
                os._exit(0)
            except OSError:
                os._exit(1)
        return os.waitpid(pid, 0)[1] == 0

    results = {f"{uid} {address} {port}": reach(uid, address, port)
               for uid in (0, 33, 9999, 10000, 59999, 60000)
               for address in ("127.0.0.1", "127.0.0.2", "::1") for port in (6379, 53)}
    print(json.dumps(results))
    """
)


@needs_nft
@pytest.mark.parametrize("closed", [[10000, 59999], None])
def test_closed_loopback_refuses_hosting_uids_for_real(tmp_path, closed):
    """In a private network namespace, with the table loaded: processes running as UIDs in the range
    cannot connect to a listener on 127.0.0.1, 127.0.0.2 or ::1 (the panel's Redis port, say), except
    on port 53; root, www-data (33) and UIDs outside the range still can. Without the setting, every UID can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare (util-linux) or ip (iproute2) is not installed")
    repo = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", LOOPBACK_SCRIPT, repo, str(tmp_path), json.dumps(closed)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip(f"cannot create a network namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    reached = json.loads(proc.stdout)
    for key, ok in reached.items():
        uid, _, port = key.split()
        refused = closed is not None and 10000 <= int(uid) <= 59999 and port != "53"
        assert ok is not refused, (key, ok)
