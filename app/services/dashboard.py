"""What the administrator's dashboard sums up: nodes by the state pages show, desyncs, failed, partial and
running operations, and customers at 90 % or more of a limit. Each read is a fixed number of set-based
queries whatever the number of nodes, operations or customers."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import func, select

from app.extensions import db
from app.models import Desync, Node, Operation, OperationStatus
from app.models.base import utcnow
from app.models.cluster import shown_state
from app.models.userdata import LIMIT_KEYS
from app.services.user_usage import customers
from app.services.userdata.kinds import KINDS

RECENT = 5
FAILED_WITHIN = timedelta(hours=24)
NEAR_PERCENT = 90
# The order the dashboard shows node states in: what needs a hand first, ready last.
STATE_ORDER = ("error", "incompatible", "unavailable", "maintenance", "users-locked",
               "new", "connecting", "installing", "syncing", "ready")


class NodeRef(NamedTuple):
    id: int
    name: str


class Usage(NamedTuple):
    """One limit of a customer: what they use of it."""

    key: str
    used: float
    limit: int

    @property
    def percent(self) -> int:
        return int(self.used * 100 // self.limit)


class NearLimit(NamedTuple):
    """A customer with the limits they use 90 % or more of."""

    id: int
    name: str
    usage: list[Usage]


def nodes_by_state() -> list[tuple[str, list[NodeRef]]]:
    """(shown state, nodes by name) for each state some node is in, in STATE_ORDER."""
    groups: dict[str, list[NodeRef]] = {}
    rows = db.session.execute(select(Node.id, Node.name, Node.state, Node.maintenance, Node.users_locked)
                              .order_by(Node.name))
    for node_id, name, state, maintenance, locked in rows:
        groups.setdefault(shown_state(state, maintenance, locked), []).append(NodeRef(node_id, name))
    rank = {state: i for i, state in enumerate(STATE_ORDER)}
    return sorted(groups.items(), key=lambda item: rank.get(item[0], -1))


class Desyncs(NamedTuple):
    count: int
    oldest: Desync | None


def desyncs() -> Desyncs:
    """How many desyncs there are and the oldest (with its node)."""
    count = db.session.scalar(select(func.count()).select_from(Desync)) or 0
    oldest = db.session.scalars(select(Desync).order_by(Desync.since, Desync.id).limit(1)).first()
    return Desyncs(count, oldest)


def operations(statuses: tuple[OperationStatus, ...], since=None) -> tuple[int, list[Operation]]:
    """How many operations are in one of statuses (created since `since`, when given) and the latest few."""
    where = [Operation.status.in_([s.value for s in statuses])]
    if since is not None:
        where.append(Operation.created_at >= since)
    count = db.session.scalar(select(func.count()).select_from(Operation).where(*where)) or 0
    latest = db.session.scalars(select(Operation).where(*where).order_by(Operation.id.desc()).limit(RECENT)).all()
    return count, list(latest)


def failed_operations() -> tuple[int, list[Operation]]:
    """Failed and partial operations of the last FAILED_WITHIN."""
    return operations((OperationStatus.FAILED, OperationStatus.PARTIAL), utcnow() - FAILED_WITHIN)


def running_operations() -> tuple[int, list[Operation]]:
    """Queued and running operations."""
    return operations((OperationStatus.QUEUED, OperationStatus.RUNNING))


def near_limits() -> list[NearLimit]:
    """Customers using NEAR_PERCENT or more of any limit, the fullest first; a limit of 0 (none allowed)
    is left out. Counts as the limit checks count them (app/services/userdata/checks.py): every row the
    customer owns of the kind; disk as the users list measures it."""
    counts = {name: dict(db.session.execute(select(kind.model.owner_id, func.count())
                                            .group_by(kind.model.owner_id)).all())
              for name, kind in KINDS.items()}
    near = []
    for customer in customers():
        usage = []
        for key in LIMIT_KEYS:
            limit = customer.limits.get(key)
            if not limit or limit <= 0:
                continue
            used = customer.disk_used_mb if key == "disk_mb" else counts[key].get(customer.id, 0)
            if used is not None and used * 100 >= limit * NEAR_PERCENT:
                usage.append(Usage(key, used, limit))
        if usage:
            near.append(NearLimit(customer.id, customer.name, usage))
    near.sort(key=lambda c: (-max(u.used / u.limit for u in c.usage), c.name))
    return near
