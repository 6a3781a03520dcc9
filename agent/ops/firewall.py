"""The cluster's firewall list as nftables `table inet hostfleet` (no other table is touched)."""

from __future__ import annotations

import hashlib
import ipaddress
import subprocess
from collections.abc import Iterable
from pathlib import Path

from agent import fsutil
from agent import validation as v
from agent.ops import apply

LIST_NAME = "firewall"
RULESET = "etc/hostfleet/firewall.nft"
SSH_PORT = 22
ACTIONS = ("accept", "drop", "reject")
PROTOCOLS = ("tcp", "udp", "icmp", "any")
ROW_FIELDS = ("id", "action", "protocol", "ports", "source", "comment")
# Loopback ports hosting accounts may still reach where loopback is closed to them (the node's resolver).
LOOPBACK_PORTS_FOR_ACCOUNTS = (53,)


def validate_row(row: object) -> dict:
    """One firewall rule, normalized; ports only with tcp, udp or any."""
    row = v.object_fields(row, "row", ROW_FIELDS)
    rule = {
        "id": v.integer(row.get("id"), "id", 0, 2**63 - 1),
        "action": v.choice(row.get("action"), "action", ACTIONS),
        "protocol": v.choice(row.get("protocol", "any"), "protocol", PROTOCOLS),
        "ports": v.port_ranges(row.get("ports", ""), "ports"),
        "source": v.cidr(row.get("source", ""), "source"),
        "comment": v.comment(row.get("comment", "")),
    }
    if rule["ports"] and rule["protocol"] == "icmp":
        raise v.ValidationError("ports", "icmp has no ports")
    return rule


def _matches(rule: dict, address: ipaddress._BaseAddress | None, port: int) -> bool:
    """Whether rule catches a new TCP connection from address to port (None: any address)."""
    if rule["protocol"] not in ("tcp", "any"):
        return False
    if rule["ports"] and not any(low <= port <= high for low, high in rule["ports"]):
        return False
    if not rule["source"]:
        return True
    network = ipaddress.ip_network(rule["source"])
    if address is None:
        return network.prefixlen == 0
    return address.version == network.version and address in network


def check_lockout(rules: list[dict], agent_port: int, masters: Iterable[str]) -> None:
    """Refuse rules whose first match would drop the master's SSH or its agent connection."""
    addresses = [ipaddress.ip_address(m) for m in masters if m] or [None]
    for port, what in ((SSH_PORT, "SSH"), (agent_port, "the agent's port")):
        for address in addresses:
            for index, rule in enumerate(rules):
                if not _matches(rule, address, port):
                    continue
                if rule["action"] != "accept":
                    source = f"the master ({address})" if address else "any address"
                    raise v.ValidationError(
                        f"rows[{index}]",
                        f"would cut {what} (tcp {port}) from {source}; add an accept rule for "
                        "the master before it or narrow the rule",
                    )
                break


def _match_text(rule: dict) -> str:
    """The nft match expression of a rule (ending with a space when not empty)."""
    parts = []
    if rule["source"]:
        family = "ip" if ipaddress.ip_network(rule["source"]).version == 4 else "ip6"
        parts.append(f"{family} saddr {rule['source']}")
    ports = ", ".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in rule["ports"])
    if rule["protocol"] == "icmp":
        parts.append("meta l4proto { icmp, ipv6-icmp }")
    elif rule["protocol"] in ("tcp", "udp"):
        parts.append(f"{rule['protocol']} dport {{ {ports} }}" if ports else
                     f"meta l4proto {rule['protocol']}")
    elif ports:
        parts.append(f"meta l4proto {{ tcp, udp }} th dport {{ {ports} }}")
    return "".join(part + " " for part in parts)


LIVE_STATE = "firewall-loaded.sha256"


def render(rules: list[dict], closed_loopback_uids: list[int] | None = None) -> bytes:
    """The nft script for the rules, in list order; with `closed_loopback_uids` ([first, last]), an output
    chain refusing those UIDs' new connections to loopback (docs/security.md, "The panel's own server")."""
    closed = None
    if closed_loopback_uids:
        first, last = (int(uid) for uid in closed_loopback_uids)
        closed = f"{first}-{last}" if first != last else str(first)
    return apply.render(
        "nftables.nft.j2", rules=[{**rule, "match": _match_text(rule)} for rule in rules], closed_uids=closed,
        open_ports="{ " + ", ".join(str(port) for port in LOOPBACK_PORTS_FOR_ACCOUNTS) + " }",
    )


def apply_rules(config, rows: list[dict], masters: Iterable[str] = ()) -> apply.Result:
    """Validate, render, `nft -c -f`, write, load (reload command `firewall`); idempotent."""
    rules = apply.validate_rows(rows, validate_row)
    masters = [*masters, *getattr(config, "master_addresses", ())]
    check_lockout(rules, config.listen_port, masters)
    path = apply.under_root(config, RULESET)
    current = {path: data} if (data := fsutil.read_or_none(path)) is not None else {}

    def check(_written: dict) -> None:
        apply.run_checker("firewall", ["nft", "-c", "-f", str(path)])

    wanted = render(rules, getattr(config, "closed_loopback_uids", None))
    result = apply.apply_files(config, {path: wanted}, current, check, ["firewall"])
    if not config.reload_commands.get("firewall"):
        return result
    state = Path(config.state_dir) / LIVE_STATE
    if not result.changed:
        # The loaded table can change without the file (`nft flush table inet hostfleet`): compare the
        # kernel's table with the one recorded after the last load, and load the file again if it differs.
        if fsutil.read_or_none(state) == loaded_table_digest():
            return result
        if apply.dry_run():
            return apply.Result(changed=True)
        with apply.OP_LOCK:
            apply.reload_service(config, "firewall")
        result = apply.Result(changed=True)
    elif apply.dry_run():
        return result
    fsutil.atomic_write(state, loaded_table_digest(), 0o600)
    return result


def loaded_table_digest() -> bytes:
    """SHA-256 of `nft list table inet hostfleet` as the kernel holds it now (empty if absent)."""
    try:
        proc = subprocess.run(["nft", "list", "table", "inet", "hostfleet"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return hashlib.sha256(b"").hexdigest().encode()
    listing = proc.stdout if proc.returncode == 0 else b""
    return hashlib.sha256(listing).hexdigest().encode()


def replace(config, version: int, content_hash: str, rows: list, masters: Iterable[str] = ()):
    """PUT /v1/lists/firewall: apply the full list and record its version and hash."""
    return apply.replace_list(
        config, LIST_NAME, version, content_hash, rows,
        lambda cfg, r: apply_rules(cfg, r, masters),
    )
