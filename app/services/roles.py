"""The role synchronizer, software synchronization, and changes to a node's roles and flags."""

from __future__ import annotations

import logging

from sqlalchemy import select

from agent.client import AgentError
from agent.software import templates_digest
from app.extensions import db
from app.models import Desync, Node, NodeOutcome, NodeState, NodeStateChange, Operation, OperationStatus
from app.services import nodes as node_service
from app.services import operations
from app.services.dbserver import resync_db_servers
from app.services.desyncs import applies_to, clear_desync, pending, register_desync
from app.services.setup import SetupError, copy_templates_over_ssh
from app.services.synchronizers import SYNCHRONIZERS, SyncError

log = logging.getLogger(__name__)

SOFTWARE_DONE_STATES = ("done", "skipped")


def _refuse_incompatible(node: Node) -> None:
    """Nothing is pushed to an agent that speaks another API version."""
    if node.state == NodeState.INCOMPATIBLE.value:
        raise SyncError(f"{node.name}'s agent speaks another API version: update the agent first")


def sync_roles(node: Node) -> bool:
    """Assign the node's roles on its agent and start software synchronization there."""
    _refuse_incompatible(node)
    try:
        status, body = node_service.agent_client(node, 15).post("/v1/software", {"roles": list(node.roles or [])},
                                                                check=False)
    except AgentError as exc:
        raise SyncError(f"the agent did not take the roles: {exc}") from None
    if status == 409:
        return False
    if status >= 400:
        raise SyncError(f"the agent refused the roles ({status}): {(body or {}).get('error')}")
    return True


def software_outcome(node: Node, report: dict | None) -> bool | None:
    """True when the agent finished installing the node's current roles, None while it works; raises if it failed."""
    report = report or {}
    if sorted(report.get("roles") or []) != sorted(node.roles or []):
        return None
    state = report.get("state")
    if state in SOFTWARE_DONE_STATES:
        return True
    if state == "failed":
        raise SyncError(f"software installation failed on {node.name}: {report.get('error')}")
    return None


def sync_software(node: Node) -> bool:
    """Ask the agent how the installation of the role packages goes; True once done."""
    _refuse_incompatible(node)
    try:
        _, body = node_service.agent_client(node, 15).get("/v1/software")
    except AgentError as exc:
        raise SyncError(str(exc)) from None
    done = software_outcome(node, body)
    if done is None and sorted((body or {}).get("roles") or []) != sorted(node.roles or []):
        # The agent holds other roles (it restarted, or the roles changed): assign them again.
        sync_roles(node)
    return bool(done)


def sync_templates(node: Node) -> bool:
    """True when the agent renders from exactly the master's templates; else copy them over SSH."""
    _refuse_incompatible(node)
    try:
        _, body = node_service.agent_client(node, 15).get("/v1/software")
    except AgentError as exc:
        raise SyncError(str(exc)) from None
    if (body or {}).get("templates") == templates_digest():
        return True
    if node.is_local:
        raise SyncError("the local agent's templates differ from the master's: reinstall the panel")
    try:
        copy_templates_over_ssh(node)
    except SetupError as exc:
        raise SyncError(exc.message) from None
    return False


def absorb_software_report(node: Node, stats: dict) -> None:
    """Called by the collector: the software desync ends when the agent reports the roles installed."""
    if node.setup_pending or "software" not in pending(node.id):
        return
    try:
        done = software_outcome(node, stats.get("software"))
    except SyncError as exc:
        row = db.session.scalar(select(Desync).where(Desync.node_id == node.id, Desync.list == "software"))
        if row is not None and row.last_error != str(exc):
            row.last_error = str(exc)
            row.attempts += 1
        node_service.change_state(node, NodeState.ERROR, f"software synchronization failed: {exc}; retry the node")
        return
    if done:
        clear_desync(node.id, "software")
        db.session.expire(node, ["desyncs"])


def start_roles(node: Node, operation: Operation) -> None:
    """Run the role synchronizer now (after setup, a roles change or a retry) and record the outcome."""
    try:
        _refuse_incompatible(node)
        register_desync(node, "software")
        node_service.change_state(node, NodeState.INSTALLING,
                                  f"role synchronizer: roles {', '.join(node.roles or []) or 'none'}; installing")
        db.session.commit()
        confirmed = sync_roles(node)
    except SyncError as exc:
        db.session.commit()
        operations.append_log(operation, f"role synchronizer: {exc}")
        operations.set_node_outcome(operation, node.id, NodeOutcome.FAILED, str(exc))
        operations.finish(operation, OperationStatus.FAILED, f"role synchronizer failed: {exc}")
        return
    if confirmed:
        clear_desync(node.id, "roles")
    db.session.commit()
    packages = ", ".join(node.roles or []) or "no roles: base packages only"
    operations.append_log(operation, f"role synchronizer: roles assigned ({packages}); the agent installs the "
                                     "packages now, progress on the node's page")
    operations.set_node_outcome(operation, node.id, NodeOutcome.APPLIED)
    done = "set up" if operation.kind == "node_setup" else "roles assigned"
    operations.finish(operation, OperationStatus.SUCCEEDED,
                      f"{node.name} {done}; software installation started, the node becomes ready by itself")



def why_roles_fixed(node: Node) -> str | None:
    """Why the node's roles cannot change now, or None when they can: never on the local node (the
    master's own server keeps the roles it was given), and not before its setup finished."""
    if node.is_local:
        return "on the local node"
    if node.setup_pending:
        return "before its setup finished"
    return None


def change_roles(node: Node, roles: list[str], *, user_id: int | None) -> Operation:
    """New roles for a node: lists that now apply are desynced, lists that no longer apply dropped, roles re-run."""
    before = list(node.roles or [])
    node.roles = list(roles)
    for name in SYNCHRONIZERS:
        if name in ("roles", "software"):
            continue
        if applies_to(node, name) and not _applied_with(before, name):
            register_desync(node, name)
        elif not applies_to(node, name):
            clear_desync(node.id, name)
    register_desync(node, "roles")
    register_desync(node, "software")
    if ("web" in before) != ("web" in roles):
        resync_db_servers()  # the db nodes let the cluster's web nodes in, and no others
    _note(node, f"roles changed from {', '.join(before) or 'none'} to {', '.join(roles) or 'none'}")
    if node.state in (NodeState.READY.value, NodeState.SYNCING.value):
        # Pending roles/software imply `installing`; say so now rather than at the next poll.
        node_service.change_state(node, NodeState.INSTALLING, "roles changed: the role synchronizer runs")
    db.session.commit()
    return operations.start_operation("node_roles", f"Apply roles on {node.name}", "apply_roles", user_id=user_id,
                                      targets=[node], params={"node_id": node.id})


def retry_roles(node: Node, *, user_id: int | None) -> Operation:
    """Run the role synchronizer again (a node in `error` after a failed software installation)."""
    register_desync(node, "roles")
    register_desync(node, "software")
    db.session.commit()
    return operations.start_operation("node_roles", f"Retry roles on {node.name}", "apply_roles", user_id=user_id,
                                      targets=[node], params={"node_id": node.id})


def _applied_with(roles: list[str], name: str) -> bool:
    sync = SYNCHRONIZERS[name]
    return sync.roles is None or bool(sync.roles & set(roles))


def set_flags(node: Node, *, maintenance: bool | None = None, users_locked: bool | None = None) -> list[str]:
    """Switch the maintenance / users_locked flags, each change in the node's history."""
    changed = []
    for name, value in (("maintenance", maintenance), ("users_locked", users_locked)):
        if value is None or getattr(node, name) == value:
            continue
        setattr(node, name, value)
        changed.append(f"{name} {'on' if value else 'off'}")
    if changed:
        _note(node, "flags: " + ", ".join(changed))
    db.session.commit()
    return changed


def _note(node: Node, reason: str) -> None:
    """A history row for a change that is not a state change (roles, flags)."""
    db.session.add(NodeStateChange(node=node, from_state=node.state, to_state=node.state, reason=reason))
