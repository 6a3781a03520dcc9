"""The desync registry: which node may differ from the master for which synchronizer (docs/distributed-requests.md)."""

from __future__ import annotations

from sqlalchemy import delete, select

from app.extensions import db
from app.models import Desync, Node
from app.models.base import utcnow
from app.services.synchronizers import SYNCHRONIZERS


def applies_to(node: Node, name: str) -> bool:
    """True when the synchronizer's criterion selects this node (e.g. mail lists: role `mail`)."""
    sync = SYNCHRONIZERS[name]
    return sync.roles is None or bool(sync.roles & set(node.roles or []))


def register_desync(node: Node, name: str, reason: str | None = None) -> Desync:
    """Record that the node may differ for this synchronizer (kept if already there)."""
    row = db.session.scalar(select(Desync).where(Desync.node_id == node.id, Desync.list == name))
    if row is None:
        row = Desync(node_id=node.id, list=name, since=utcnow(), attempts=0, last_error=reason)
        db.session.add(row)
    else:
        row.next_try_at = None
    return row


def register_all(node: Node) -> list[str]:
    """Register every synchronizer that applies to the node (a new node starts desynced)."""
    names = [name for name in sorted(SYNCHRONIZERS, key=lambda n: SYNCHRONIZERS[n].priority) if applies_to(node, name)]
    for name in names:
        register_desync(node, name)
    return names


def clear_desync(node_id: int, name: str) -> bool:
    """Delete the desync row once the node confirmed it holds the master's data; True if one was there."""
    result = db.session.execute(delete(Desync).where(Desync.node_id == node_id, Desync.list == name))
    return result.rowcount > 0


def pending(node_id: int) -> list[str]:
    """The synchronizers still pending on a node, by priority."""
    names = db.session.scalars(select(Desync.list).where(Desync.node_id == node_id)).all()
    return sorted(names, key=lambda n: SYNCHRONIZERS[n].priority if n in SYNCHRONIZERS else 999)
