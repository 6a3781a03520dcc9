"""Placement of users (docs/user-data.md, "Placement"): which node holds a user's role, and why.

score = (users_on_node / weight) / free_resource among nodes that have the role, are `ready`,
not `users_locked` and not in maintenance; the smallest score wins, ties go to the lowest id.
The panel's own server (the local node) takes users only when no other node can (docs/design.md,
"Placement").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.extensions import db
from app.models import Node, NodeState, Placement, PlacementDecision
from app.services.errors import ServiceError
from app.services.policies import get_policy

GIB = 1024**3
RESOURCES = ("disk", "memory", "none")
LOCAL_NODE_EXCLUDED = "is the panel's own server (used only when no other node can take the role)"


class PlacementError(ServiceError):
    """No node can take the role; the message names why each node was excluded."""

    status = 409

    def __init__(self, role: str, candidates: list[dict]):
        self.role = role
        self.candidates = candidates
        if not candidates:
            reason = "the cluster has no nodes"
        else:
            reason = "; ".join(f"{c['node']}: {c['excluded']}" for c in candidates)
        super().__init__(f"No node can hold the {role} role: {reason}.")


@dataclass
class Decision:
    """The outcome of placing one role: the chosen node and every node's score or exclusion."""

    role: str
    resource: str
    node: Node | None
    candidates: list[dict] = field(default_factory=list)
    chosen_by: str = "auto"


def free_resource(node: Node, resource: str) -> float | None:
    """The node's free disk or memory in GiB from its latest statistics (1 for `none`)."""
    if resource == "none":
        return 1.0
    stats = node.stats or {}
    if resource == "disk":
        value = (stats.get("disk") or {}).get("free")
    else:
        value = (stats.get("memory") or {}).get("available")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value / GIB


def users_on_nodes() -> dict[int, int]:
    """How many distinct users hold at least one role on each node."""
    rows = db.session.execute(
        select(Placement.node_id, func.count(func.distinct(Placement.user_id))).group_by(Placement.node_id)
    ).all()
    return {node_id: count for node_id, count in rows}


def exclusion(node: Node, role: str) -> str | None:
    """Why a node cannot take new users for role, or None when it can."""
    if role not in (node.roles or []):
        return f"does not have the {role} role"
    if node.state != NodeState.READY.value:
        return f"is {node.state}, not ready"
    if node.users_locked:
        return "is locked for new users"
    if node.maintenance:
        return "is in maintenance"
    return None


def score_nodes(role: str, resource: str | None = None) -> list[dict]:
    """Every node with its score, or the reason it is excluded, in id order."""
    resource = resource or get_policy().placement_resource
    if resource not in RESOURCES:
        resource = "none"
    counts = users_on_nodes()
    candidates = []
    for node in db.session.scalars(select(Node).order_by(Node.id)):
        entry = {"node_id": node.id, "node": node.name, "users": counts.get(node.id, 0),
                 "weight": node.weight, "free": None, "score": None, "excluded": exclusion(node, role)}
        if entry["excluded"] is None:
            free = free_resource(node, resource)
            if free is None:
                entry["excluded"] = f"has no {resource} figure yet (no statistics from its agent)"
            elif free <= 0:
                entry["excluded"] = f"has no free {resource}"
            elif node.weight <= 0:
                entry["excluded"] = "has weight 0"
            else:
                entry["free"] = round(free, 6)
                entry["score"] = (entry["users"] / node.weight) / free
        candidates.append(entry)
    return candidates


def in_words(candidate: dict, resource: str | None, chosen_id: int | None, by_admin: bool = False) -> str:
    """One node of a placement decision as an administrator reads it: why it was left out, or its figures
    with their units and its score (users per unit of weight per GiB free; the lowest score wins)."""
    node = candidate.get("node", "?")
    if candidate.get("excluded"):
        return f"{node} was left out: it {candidate['excluded']}"
    users, weight, score = candidate.get("users", 0), candidate.get("weight"), candidate.get("score")
    held = f"{users} user{'' if users == 1 else 's'} on weight {weight}"
    if resource in ("disk", "memory") and isinstance(candidate.get("free"), (int, float)):
        held += f", {candidate['free']:.1f} GiB of {resource} free"
    score_words = f"score {score:.3g}" if isinstance(score, (int, float)) else "no score"
    if candidate.get("node_id") != chosen_id:
        verdict = "not chosen"
    else:
        verdict = "chosen by the administrator" if by_admin else "chosen (the lowest score)"
    return f"{node}: {held} → {score_words}, {verdict}"


def choose(role: str, resource: str | None = None) -> Decision:
    """The node the formula picks for role; PlacementError naming every exclusion otherwise."""
    resource = resource or get_policy().placement_resource
    candidates = score_nodes(role, resource)
    eligible = [c for c in candidates if c["excluded"] is None]
    if not eligible:
        raise PlacementError(role, candidates)
    local_ids = set(db.session.scalars(select(Node.id).where(Node.is_local.is_(True))))
    if any(c["node_id"] not in local_ids for c in eligible):
        # Code on the panel's server reaches its loopback services; customers go elsewhere while they can.
        for entry in eligible:
            if entry["node_id"] in local_ids:
                entry["excluded"] = LOCAL_NODE_EXCLUDED
        eligible = [c for c in eligible if c["excluded"] is None]
    best = min(eligible, key=lambda c: (c["score"], c["node_id"]))
    return Decision(role, resource, db.session.get(Node, best["node_id"]), candidates)


def explicit(role: str, node: Node) -> Decision:
    """An administrator's choice of node, still refused when that node cannot take the role."""
    candidates = score_nodes(role)
    mine = next(c for c in candidates if c["node_id"] == node.id)
    if mine["excluded"]:
        raise PlacementError(role, [mine])
    return Decision(role, get_policy().placement_resource, node, candidates, chosen_by="admin")


def record(user_id: int, decision: Decision) -> Placement:
    """Store the decision and the placement it leads to (the caller commits)."""
    row = PlacementDecision(user_id=user_id, role=decision.role, node_id=decision.node.id,
                            chosen_by=decision.chosen_by, resource=decision.resource,
                            candidates=decision.candidates)
    db.session.add(row)
    placement = db.session.scalar(select(Placement).where(Placement.user_id == user_id,
                                                          Placement.role == decision.role))
    if placement is None:
        placement = Placement(user_id=user_id, role=decision.role)
        db.session.add(placement)
    placement.node_id = decision.node.id
    placement.node = decision.node
    placement.decision = row
    db.session.flush()
    return placement
