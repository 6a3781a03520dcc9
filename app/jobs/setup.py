"""Jobs that set nodes up over SSH, apply their roles and update their agents."""

from __future__ import annotations

from app.extensions import db
from app.jobs import job
from app.models import Node, Operation, OperationStatus
from app.services import node_lifecycle, operations
from app.services.roles import start_roles


@job
def setup_node(operation_id: int) -> None:
    """Run the 8 setup steps on the operation's node, then its role synchronizer."""
    node_lifecycle.run_setup(db.session.get(Operation, operation_id))


@job
def apply_roles(operation_id: int) -> None:
    """Run the role synchronizer of the operation's node now."""
    operation = db.session.get(Operation, operation_id)
    node = db.session.get(Node, operation.params["node_id"])
    if node is None:
        operations.finish(operation, OperationStatus.FAILED, "the node was removed")
        return
    operations.mark_running(operation)
    start_roles(node, operation)


@job
def update_agent(operation_id: int) -> None:
    """Reinstall the master's agent on the operation's node over SSH."""
    node_lifecycle.update_agent(db.session.get(Operation, operation_id))
