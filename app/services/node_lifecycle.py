"""A node's life on the master after it was added: the setup job with its role synchronizer, the
agent update, retries and removal. It sits on top of setup (SSH and the steps), roles (the role
synchronizer) and the collector (docs/node-setup.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.extensions import db
from app.models import Node, NodeOutcome, Operation, OperationStatus
from app.services import operations, setup
from app.services.collector import record_poll_success
from app.services.dbserver import resync_db_servers
from app.services.errors import ConflictError
from app.services.roles import retry_roles, start_roles
from app.services.userdata import users_holding

log = logging.getLogger(__name__)


def run_setup(operation: Operation) -> None:
    """The setup job's body: steps 1-8 as ispmaster, then the role synchronizer."""
    node = setup.run_setup_steps(operation)
    if node is not None:
        start_roles(node, operation)


def update_agent(operation: Operation) -> None:
    """One-click agent update: reinstall the master's agent and templates over SSH, restart, poll it."""
    updated = setup.reinstall_agent(operation)
    if updated is None:
        return
    node, stats, house = updated
    record_poll_success(node, stats)
    db.session.commit()
    operations.append_log(operation, f"the agent answers: version {stats.get('agent_version')}, "
                                     f"API {stats.get('api_version')}; node is {node.state}")
    operations.set_node_outcome(operation, node.id, NodeOutcome.APPLIED)
    operations.finish(operation, OperationStatus.SUCCEEDED, f"agent updated to {house.agent_version}")


def retry_node(node: Node, *, user_id: int | None) -> Operation:
    """Re-run what failed: the setup job while setup is unfinished, else the role synchronizer."""
    if not setup.can_retry(node):
        raise setup.SetupError(f"{node.name} is {node.state}; there is nothing to retry", status=409)
    if node.setup_pending:
        return setup.start_setup(node, user_id=user_id)
    return retry_roles(node, user_id=user_id)


def _owners_of_user_data(node: Node) -> list[str]:
    """Users whose data lives on the node."""
    return users_holding(node.id)


# Each returns, for a node, the owners of the user data it still holds (empty: nothing blocks removal).
REMOVAL_CHECKS: list[Callable[[Node], list[str]]] = [_owners_of_user_data]


def removal_blockers(node: Node) -> list[str]:
    """The owners of user data still on the node, sorted; removal is refused while there are any."""
    owners: set[str] = set()
    for check in REMOVAL_CHECKS:
        owners.update(check(node))
    return sorted(owners)


class RemovalRefused(ConflictError):
    """The node cannot be removed; the message names why (and the owners)."""


def remove_node(node: Node) -> str:
    """Remove a node: take the agent and the master's access off it, then forget it (desyncs and history go too).

    Refused for the local node and while it holds user data. Returns what happened on the node; the
    node is forgotten even when it cannot be reached (the message then says what to run on it).
    """
    if node.is_local:
        raise RemovalRefused("the local node is the master's own server and cannot be removed")
    owners = removal_blockers(node)
    if owners:
        raise RemovalRefused(f"{node.name} still holds user data of: {', '.join(owners)}; move or delete it first")
    _, outcome = setup.decommission(node)
    log.info("node %s removed; %s", node.name, outcome)
    was_web = "web" in (node.roles or [])
    db.session.delete(node)
    if was_web:
        db.session.flush()
        resync_db_servers()  # the db nodes no longer let it in
    db.session.commit()
    return outcome
