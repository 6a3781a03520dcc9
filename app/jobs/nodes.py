"""Jobs that act on nodes."""

from __future__ import annotations

from agent.client import AgentError
from app.extensions import db
from app.jobs import job
from app.models import Node, NodeOutcome, Operation
from app.services import lists, operations
from app.services import nodes as node_service
from app.services.collector import record_poll_failure, record_poll_success
from app.services.nodes import read_stats
from app.services.policies import get_policy


@job
def check_nodes(operation_id: int) -> None:
    """Poll each target node's agent now and record the per-node outcome."""
    operation = db.session.get(Operation, operation_id)
    operations.mark_running(operation)
    policy = get_policy()
    for row in operation.nodes:
        node = db.session.get(Node, row.node_id) if row.node_id else None
        if node is None:
            operations.set_node_outcome(operation, row.node_id, NodeOutcome.FAILED, "node was removed")
            continue
        operations.append_log(operation, f"polling {node.name} at {node.agent_url}")
        node_service.touch_poll(node)
        asked_at = lists.heads()
        try:
            stats = read_stats(node_service.agent_client(node))
        except AgentError as exc:
            record_poll_failure(node, str(exc), policy)
            outcome = NodeOutcome.UNAVAILABLE if exc.kind in ("unreachable", "timeout") else NodeOutcome.FAILED
            operations.set_node_outcome(operation, node.id, outcome, str(exc))
            operations.append_log(operation, f"{node.name}: {exc}")
            continue
        record_poll_success(node, stats, asked_at)
        operations.set_node_outcome(operation, node.id, NodeOutcome.APPLIED)
        operations.append_log(operation, f"{node.name}: answered, state {node.state}")
    status, message = operations.outcome_status(operation)
    operations.finish(operation, status, message)
