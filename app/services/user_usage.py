"""Users for a long list (the ISPmanager `user` list, GET /api/v1/users, the Users page): each with plan,
effective limits and disk use, read in a fixed number of set-based queries whatever the number of users (no
query per user, no ORM objects), so that ten thousand customers list in tens of milliseconds.

The rules are those of app/services/plans.py (a user's own limit wins over the plan's; only whole numbers
count) and of the users service's disk measurement (a node's figure counts only for users placed on it or
holding data there; docs/security.md, the master distrusts nodes).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from sqlalchemy import Text, cast, select, union

from app.extensions import db
from app.models import Node, Placement, Plan, User, UserAccount, UserLevel
from app.models.userdata import USER_ROLES
from app.services.userdata.kinds import KINDS

MIB = 2**20


class Customer(NamedTuple):
    """One customer as the list shows them."""

    id: int
    name: str
    fullname: str
    comment: str
    active: bool
    plan: str | None
    limits: dict[str, int]
    disk_used_mb: float | None


def _whole(limits: object) -> dict[str, int]:
    """The whole-number limits of a stored limits object (or of its JSON text)."""
    if isinstance(limits, str):
        if limits in ("{}", "null"):
            return {}
        limits = json.loads(limits)
    if not isinstance(limits, dict):
        return {}
    return {k: v for k, v in limits.items() if isinstance(v, int)}


def _usage_reports() -> dict[int, dict[str, int]]:
    """Per node that has measured: {owner name: bytes}."""
    reports = {}
    for node_id, usage in db.session.execute(select(Node.id, Node.stats["usage"])):
        if isinstance(usage, dict) and usage.get("measured_at") is not None:
            owners = usage.get("owners")
            reports[node_id] = owners if isinstance(owners, dict) else {}
    return reports


def _held(node_ids: list[int], user_ids: list[int] | None) -> list[tuple[int, int]]:
    """(user id, node id) for every node among node_ids holding one of the users' roles or indexed data, each
    pair once (a UNION of placements and every kind's index)."""
    parts = [select(Placement.user_id.label("user_id"), Placement.node_id.label("node_id"))
             .where(Placement.node_id.in_(node_ids))]
    parts += [select(kind.model.owner_id, kind.model.node_id).where(kind.model.node_id.in_(node_ids))
              for kind in KINDS.values()]
    if user_ids is not None:
        parts = [part.where(part.selected_columns[0].in_(user_ids)) for part in parts]
    return list(db.session.connection().execute(union(*parts)))


def _disk_used(names_by_id: dict[int, str], every_user: bool) -> dict[int, int] | None:
    """Bytes per user id over the nodes that hold them (None: no node has measured yet)."""
    reports = _usage_reports()
    if not reports:
        return None
    used: dict[int, int] = {}
    for user_id, node_id in _held(list(reports), None if every_user else list(names_by_id)):
        size = reports[node_id].get(names_by_id.get(user_id))
        if isinstance(size, int) and size > 0:
            used[user_id] = used.get(user_id, 0) + size
    return used


def _plans() -> dict[int, tuple[str, dict[str, int]]]:
    """Every plan: id → (name, whole-number limits)."""
    return {plan_id: (name, _whole(limits))
            for plan_id, name, limits in db.session.connection().execute(select(Plan.id, Plan.name, Plan.limits))}


def customers(names: list[str] | None = None) -> list[Customer]:
    """Every hosting customer (level user) by name, or those named; four queries in all."""
    # The limits as JSON text: most accounts have none ("{}"), and those need no decoding.
    query = (select(User.id, User.name, User.fullname, User.comment, User.active,
                    cast(UserAccount.limits, Text), UserAccount.plan_id)
             .outerjoin(UserAccount, UserAccount.user_id == User.id)
             .where(User.level == UserLevel.USER.value).order_by(User.name))
    if names is not None:
        query = query.where(User.name.in_(names))
    rows = db.session.connection().execute(query).all()  # Core rows: no ORM loading for ten thousand of them
    plans = _plans()
    used = _disk_used({row[0]: row[1] for row in rows}, names is None)
    no_plan = (None, {})
    listed = []
    for user_id, name, fullname, comment, active, own, plan_id in rows:
        plan_name, plan_limits = plans.get(plan_id, no_plan)
        limits = {**plan_limits, **_whole(own)} if own and own != "{}" else plan_limits
        disk = None if used is None else round(used.get(user_id, 0) / MIB, 1)
        listed.append(Customer(user_id, name, fullname or "", comment or "", bool(active), plan_name, limits, disk))
    return listed


def user_dicts(user_ids: list[int] | None = None) -> list[dict]:
    """Every panel user (administrators too), or those with these ids, by name, as the API shows a user
    (app/services/users.py user_to_dict, with disk_used_mb); five queries in all."""
    query = (select(User.id, User.name, User.level, User.active, UserAccount.user_id, UserAccount.roles,
                    UserAccount.limits, UserAccount.plan_id, UserAccount.uid, UserAccount.gid)
             .outerjoin(UserAccount, UserAccount.user_id == User.id).order_by(User.name))
    placed = select(Placement.user_id, Placement.role, Node.name).join(Node, Node.id == Placement.node_id)
    if user_ids is not None:
        query = query.where(User.id.in_(user_ids))
        placed = placed.where(Placement.user_id.in_(user_ids))
    connection = db.session.connection()
    rows = connection.execute(query).all()
    location: dict[int, dict[str, str]] = {}
    for user_id, role, node_name in connection.execute(placed):
        location.setdefault(user_id, {})[role] = node_name
    plans = _plans()
    used = _disk_used({row[0]: row[1] for row in rows}, user_ids is None)
    no_plan = (None, {})
    listed = []
    for user_id, name, level, active, account, roles, limits, plan_id, uid, gid in rows:
        plan_name, plan_limits = plans.get(plan_id, no_plan) if account is not None else no_plan
        own = dict(limits or {}) if account is not None else {}
        where = location.get(user_id, {})
        listed.append({
            "id": user_id, "name": name, "level": level, "active": bool(active),
            "roles": list(roles or []) if account is not None else [],
            "limits": own, "plan": plan_name,
            "effective_limits": {**plan_limits, **_whole(own)} if account is not None else {},
            "uid": uid, "gid": gid,
            "location": {role: where.get(role) for role in USER_ROLES},
            "disk_used_mb": None if used is None else round(used.get(user_id, 0) / MIB, 1),
        })
    return listed
