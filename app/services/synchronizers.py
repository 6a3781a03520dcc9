"""The synchronizers: one kind of work that brings a node in line with the master (docs/distributed-requests.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.models import Node, NodeState
from app.services.errors import ServiceError


@dataclass(frozen=True)
class Synchronizer:
    """A synchronizer's name, its priority (lower runs first) and the state it implies."""

    name: str
    priority: int
    implies: NodeState
    blocks_readiness: bool = True
    roles: frozenset[str] | None = None  # None: every node; else nodes with any of these roles


SYNCHRONIZERS: dict[str, Synchronizer] = {
    s.name: s
    for s in (
        Synchronizer("roles", 10, NodeState.INSTALLING),
        Synchronizer("software", 20, NodeState.INSTALLING),
        Synchronizer("templates", 30, NodeState.SYNCING),
        Synchronizer("dbserver", 35, NodeState.SYNCING, roles=frozenset({"db"})),
        Synchronizer("users", 40, NodeState.SYNCING),
        Synchronizer("firewall", 50, NodeState.SYNCING),
        Synchronizer("scheduler", 60, NodeState.SYNCING),
        Synchronizer("mail_whitelist", 70, NodeState.SYNCING, roles=frozenset({"mail"})),
        Synchronizer("mail_blacklist", 71, NodeState.SYNCING, roles=frozenset({"mail"})),
    )
}


def implied_state(pending: list[str]) -> NodeState:
    """The state a reachable node is in given its pending synchronizers."""
    blocking = [SYNCHRONIZERS[name] for name in pending if name in SYNCHRONIZERS]
    blocking = [s for s in blocking if s.blocks_readiness]
    if any(s.implies == NodeState.INSTALLING for s in blocking):
        return NodeState.INSTALLING
    if blocking:
        return NodeState.SYNCING
    return NodeState.READY


class SyncError(ServiceError):
    """A synchronizer could not bring the node in line; the message says what and what to do."""


# A runner pushes the master's data for one synchronizer to one node. It returns True once the
# node confirmed it holds exactly the master's data (the desync may then be cleared), False
# while the node is still working on it (keep the desync, look again soon), and raises
# SyncError when it failed (the desync stays, with the error, and backs off). The table of
# runners is sync_runners.RUNNERS.
SyncRunner = Callable[[Node], bool]
