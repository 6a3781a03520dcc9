"""Nodes: state changes with history, the local node, agent clients, the API shape."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from flask import current_app, has_app_context
from sqlalchemy import select

from agent import API_VERSION
from agent.client import MAX_ANSWER_BYTES, AgentClient
from app.extensions import db
from app.models import Node, NodeState, NodeStateChange
from app.models.base import iso_utc, utcnow
from app.services.agent_answers import ShapeError, check_stats, refused
from app.services.uids import uid_range

# Agent API versions this master speaks; anything else is `incompatible`.
SUPPORTED_API_VERSIONS = frozenset({API_VERSION})
LOCAL_NODE_ROLES = ["web", "dns", "mail"]

_clients: dict[tuple, AgentClient] = {}
_clients_lock = threading.Lock()


def change_state(node: Node, to: NodeState, reason: str) -> None:
    """Move a node to another state and record why (no-op when already there)."""
    if node.state == to.value:
        return
    db.session.add(
        NodeStateChange(node=node, from_state=node.state, to_state=to.value, reason=reason)
    )
    node.state = to.value


def create_node(name: str, address: str, *, roles: list[str], reason: str, **fields) -> Node:
    """Add a node in state `new`, with its first history row."""
    node = Node(name=name, address=address, roles=roles, state=NodeState.NEW.value, **fields)
    db.session.add(node)
    db.session.add(NodeStateChange(node=node, from_state=None, to_state="new", reason=reason))
    return node


def agent_client(node: Node, timeout: float = 5.0) -> AgentClient:
    """A kept-alive, pinned, signing client for the node's agent (reused across calls); its answers are
    capped at AGENT_MAX_ANSWER_BYTES unless a call allows more."""
    limit = current_app.config["AGENT_MAX_ANSWER_BYTES"] if has_app_context() else MAX_ANSWER_BYTES
    key = (node.id, node.agent_url, node.cert_fingerprint, node.agent_secret, timeout, limit)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = AgentClient(
                node.agent_url,
                node.agent_secret,
                node.cert_fingerprint,
                timeout=(min(3.05, timeout), timeout),
                max_answer_bytes=limit,
            )
            _clients[key] = client
        return client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_agent_paths(data_dir: Path) -> dict[str, Path]:
    """Where the local node's agent keeps its config, secrets, state and managed root."""
    base = Path(data_dir) / "local-node"
    return {
        "base": base,
        "config": base / "agent.json",
        "secret": base / "secret",
        "state": base / "state",
        "root": base / "root",
    }


def ensure_local_node(data_dir: Path) -> Node:
    """Add the master's own server as a node at first start, without SSH."""
    from agent.config import initialize

    node = db.session.scalar(select(Node).where(Node.is_local.is_(True)))
    paths = local_agent_paths(data_dir)
    if node is None:
        node = create_node(
            "local",
            "127.0.0.1",
            roles=LOCAL_NODE_ROLES,
            is_local=True,
            agent_port=_free_port(),
            reason="the master's own server, added at first start",
        )
        db.session.flush()
    for key in ("base", "state", "root"):
        paths[key].mkdir(mode=0o700, parents=True, exist_ok=True)
    result = initialize(
        paths["config"],
        root=paths["root"],
        state_dir=paths["state"],
        listen_host="127.0.0.1",
        listen_port=node.agent_port,
        secret_file=paths["secret"],
        roles=node.roles,
        addresses=["127.0.0.1"],
        hostnames=["localhost"],
        log_file=paths["base"] / "agent.log",
        # Customers placed here would otherwise reach the panel's Redis and gunicorn on loopback.
        closed_loopback_uids=list(uid_range()),
    )
    node.agent_secret = paths["secret"].read_text().strip()
    if node.cert_fingerprint and node.cert_fingerprint != result["fingerprint"]:
        reason = "the local agent's certificate was re-created; pinned the new one"
    else:
        reason = "local agent configured (certificate pinned); waiting for its first answer"
    node.cert_fingerprint = result["fingerprint"]
    if node.state == NodeState.NEW.value:
        change_state(node, NodeState.CONNECTING, reason)
    db.session.commit()
    return node


def node_to_dict(node: Node) -> dict:
    """The node as the API shows it ."""
    return {
        "id": node.id,
        "name": node.name,
        "address": node.address,
        "state": node.state,
        "roles": list(node.roles or []),
        "weight": node.weight,
        "is_local": node.is_local,
        "maintenance": node.maintenance,
        "users_locked": node.users_locked,
        "last_seen": iso_utc(node.last_seen),
        "agent_version": node.agent_version,
        "stats": summarize_stats(node.stats),
        "desyncs": [
            {
                "list": d.list,
                "since": iso_utc(d.since),
                "attempts": d.attempts,
                "last_error": d.last_error,
            }
            for d in node.desyncs
        ],
    }


def summarize_stats(stats: dict | None) -> dict | None:
    """The load, memory and disk figures the panel shows for a node."""
    if not stats:
        return None
    memory = stats.get("memory") or {}
    disk = stats.get("disk") or {}
    return {
        "load": (stats.get("load") or [None])[0],
        "memory_used_percent": memory.get("used_percent"),
        "disk_used_percent": disk.get("used_percent"),
        "disk_free": disk.get("free"),
        "uptime_s": stats.get("uptime_s"),
    }


def touch_poll(node: Node) -> None:
    """Stamp the time of the latest poll attempt."""
    node.last_poll_at = utcnow()


def read_stats(client: AgentClient) -> dict:
    """The node's statistics with only the fields the master reads, each checked; AgentError (kind
    "answer" for a document of the wrong shape) otherwise."""
    try:
        return check_stats(client.stats(), SUPPORTED_API_VERSIONS)
    except ShapeError as exc:
        raise refused(client.base_url + "/v1/stats", "statistics", exc) from None
