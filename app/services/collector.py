"""The statistics collector: polls every agent's /v1/stats and moves node states."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from sqlalchemy import select

from agent.client import AgentError
from app.display import counted
from app.extensions import db
from app.models import Node, NodeState, Policy
from app.models.base import utcnow
from app.services import list_locks, lists
from app.services import nodes as node_service
from app.services.nodes import read_stats
from app.services.policies import get_policy
from app.services.roles import absorb_software_report
from app.services.sync import detect_drift
from app.services.synchronizers import implied_state
from app.services.userdata import reconcile_after_poll

log = logging.getLogger(__name__)

# Nodes in `new` have no agent yet; `installing` and `error` belong to the setup job.
POLLED_STATES = {
    NodeState.CONNECTING.value,
    NodeState.SYNCING.value,
    NodeState.READY.value,
    NodeState.UNAVAILABLE.value,
    NodeState.INCOMPATIBLE.value,
    NodeState.INSTALLING.value,
}
MAX_POLL_THREADS = 64



def collect_stats() -> dict[int, str]:
    """Poll every agent in parallel and apply the results; returns node id → "ok" or the error.

    Each node's answer is applied on its own (a savepoint each): one whose answer is refused, or
    whose answer fails to apply, counts as a missed poll with the reason, and the others go on."""
    # A node whose setup job has not registered its desyncs yet must not look "ready" to anyone.
    nodes = db.session.scalars(
        select(Node).where(Node.state.in_(POLLED_STATES), Node.setup_pending.is_(False))
    ).all()
    if not nodes:
        return {}
    timeout = current_app.config["AGENT_TIMEOUT_S"]
    clients = {node.id: node_service.agent_client(node, timeout) for node in nodes}
    # An answer is compared with the master's lists only where they did not move while it was asked.
    asked_at = lists.heads()

    def poll(node_id: int):
        try:
            return read_stats(clients[node_id])
        except AgentError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(MAX_POLL_THREADS, len(nodes))) as pool:
        results = dict(zip(clients, pool.map(poll, clients), strict=True))

    policy = get_policy()
    summary = {}
    for node in nodes:
        result = results[node.id]
        node_service.touch_poll(node)
        if not isinstance(result, AgentError):
            try:
                with db.session.begin_nested():
                    record_poll_success(node, result, asked_at)
                summary[node.id] = "ok"
                continue
            except Exception as exc:  # noqa: BLE001  (one node's answer must not stop the others' polls)
                log.exception("the statistics of node %s could not be applied", node.name)
                result = AgentError("answer", f"{node.agent_url}/v1/stats: the agent's statistics could not "
                                              f"be applied ({exc!r}); nothing of them was used", url=node.agent_url)
        if result.kind == "answer":
            log.warning("node %s: %s", node.name, result)
        record_poll_failure(node, str(result), policy)
        summary[node.id] = str(result)
    db.session.commit()
    # The agents hold user data; the index follows them after a crash mid-change.
    reconcile_after_poll([node_id for node_id, result in summary.items() if result == "ok"])
    return summary


def record_poll_success(node: Node, stats: dict, asked_at: dict[str, tuple[int, str]] | None = None) -> None:
    """Store the figures (a document read_stats checked) and move the node to the state its answer and
    desyncs imply (asked_at: the master's list heads read before the node was asked; see
    sync.detect_drift). An agent of another API version leaves no figures: the pages show none."""
    node.last_seen = utcnow()
    node.missed_polls = 0
    node.last_poll_error = None
    node.stats = stats if stats.get("api_version") in node_service.SUPPORTED_API_VERSIONS else None
    node.agent_version = str(stats.get("agent_version") or "")[:32] or None
    api_version = stats.get("api_version")
    node.api_version = api_version if isinstance(api_version, int) else None
    if api_version not in node_service.SUPPORTED_API_VERSIONS:
        node_service.change_state(
            node,
            NodeState.INCOMPATIBLE,
            f"the agent speaks API version {api_version!r}; this master speaks "
            f"{sorted(node_service.SUPPORTED_API_VERSIONS)}: update the agent",
        )
        return
    if node.setup_pending:
        return
    absorb_software_report(node, stats)
    detect_drift(node, stats.get("lists"), asked_at=asked_at)
    counted = list_locks.counted_desyncs(node.state, [d.list for d in node.desyncs])
    target = implied_state(counted)
    if node.state == target.value:
        return
    if target == NodeState.READY:
        reason = "the agent answers and no synchronizer is pending"
    else:
        pending = ", ".join(counted)
        reason = f"the agent answers; waiting for synchronizers: {pending}"
    if node.state == NodeState.UNAVAILABLE.value:
        reason = "back after missed polls: " + reason
    node_service.change_state(node, target, reason)


def record_poll_failure(node: Node, error: str, policy: Policy) -> None:
    """Count a missed poll; after the policy's number in a row the node is `unavailable`."""
    node.missed_polls += 1
    node.last_poll_error = error[:2000]
    if node.missed_polls >= policy.missed_polls and node.state in (
        NodeState.READY.value,
        NodeState.SYNCING.value,
        NodeState.CONNECTING.value,
        NodeState.INCOMPATIBLE.value,
    ):
        node_service.change_state(
            node,
            NodeState.UNAVAILABLE,
            f"missed {counted(node.missed_polls, 'poll')} in a row: {error}",
        )
