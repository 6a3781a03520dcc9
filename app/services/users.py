"""Panel users as hosting accounts: create, edit, suspend, resume and delete them, and show them.

A user has one UID/GID and the same OS account on every node that holds one of their roles; the
hosting account itself (UID allocation, limits, placement of each role, the nodes and disk it takes)
is app/services/userdata/owners.py, which this module re-exports. Deleting a user removes their data
on every node and reports per node (app/services/userdata/purge.py).
"""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select

from agent import validation as v
from app.extensions import db
from app.models import Node, Placement, User, UserAccount, UserLevel
from app.models.base import MAX_ID, iso_utc
from app.models.userdata import DEFAULT_ROLES, LIMIT_KEYS, USER_ROLES
from app.services import accounts, os_passwords, placement, plans, user_usage
from app.services.uids import DEFAULT_UID_RANGE, uid_range
from app.services.userdata.checks import count_of
from app.services.userdata.errors import UserDataError, invalid, object_body, validated
from app.services.userdata.kinds import KINDS
from app.services.userdata.owners import (
    MIB,
    RESERVED_NAMES,
    account_of,
    allocate_uid,
    decide_placement,
    disk_used,
    ensure_account,
    ensure_role,
    limit_of,
    node_ids_of,
    node_outcome,
    nodes_of,
    os_account_body,
    owned_bytes,
    placement_of,
    remove_os_account,
    send_os_account,
    usage_reports,
)
from app.services.userdata.proxy import call_agent
from app.services.userdata.purge import PURGE_ORDER, purge_node

__all__ = [
    "DEFAULT_UID_RANGE",
    "MIB",
    "PURGE_ORDER",
    "RESERVED_NAMES",
    "USER_FIELDS",
    "account_of",
    "allocate_uid",
    "create_user",
    "data_count",
    "delete_user",
    "disk_used",
    "ensure_account",
    "ensure_role",
    "limit_of",
    "location",
    "make_user",
    "node_ids_of",
    "node_outcome",
    "nodes_of",
    "os_account_body",
    "send_os_account",
    "owned_bytes",
    "placement_of",
    "set_active",
    "uid_range",
    "update_user",
    "usage",
    "usage_reports",
    "user_to_dict",
    "users_to_dicts",
]

log = logging.getLogger(__name__)


USER_FIELDS = ("name", "password", "level", "roles", "limits", "nodes", "active", "plan")


def _validate_fields(data: object, creating: bool) -> dict:
    """Check every given field with the shared validators; returns the normalized values."""
    data = object_body(data, USER_FIELDS)
    clean: dict = {}
    if creating or "name" in data:
        if not creating:
            raise invalid("name", "cannot change; the name is the OS account on every node")
        name = validated(v.username, data.get("name"), "name")
        if name in RESERVED_NAMES:
            raise invalid("name", f"{name} is a system account name on the nodes")
        if db.session.scalar(select(User.id).where(User.name == name)) is not None:
            raise UserDataError(409, f"user {name} exists", {"name": f"{name} exists"})
        clash = _prefix_clash(name)
        if clash is not None:
            shorter = min(clash, name, key=len)
            message = (f"{name} and {clash} would share database names: {shorter}_… names belong to one user "
                       "only (choose a name that is not another user's name plus _)")
            raise UserDataError(409, message, {"name": message})
        clean["name"] = name
    if creating or "password" in data:
        clean["password"] = validated(v.password, data.get("password"), "password")
    if "level" in data or creating:
        clean["level"] = validated(v.choice, data.get("level", "user"), "level", ("user", "admin"))
    if "roles" in data or creating:
        roles = data.get("roles", list(DEFAULT_ROLES))
        if not isinstance(roles, list):
            raise invalid("roles", "must be a list of roles")
        clean["roles"] = sorted({validated(v.choice, r, "roles", USER_ROLES) for r in roles})
    if "limits" in data or creating:
        limits = data.get("limits") or {}
        if not isinstance(limits, dict):
            raise invalid("limits", "must be an object")
        clean["limits"] = {}
        for key, value in limits.items():
            field = f"limits.{key}" if isinstance(key, str) and key in LIMIT_KEYS else "limits"
            validated(v.choice, key, field, LIMIT_KEYS)
            if value is not None and value != "":
                clean["limits"][key] = validated(v.integer, value, field, 0, 10_000_000)
    if "nodes" in data:
        clean["nodes"] = _validate_nodes(data["nodes"])
    if "plan" in data:
        clean["plan"] = None if data["plan"] in (None, "") else plans.find_plan(data["plan"])
    if "active" in data:
        clean["active"] = validated(v.boolean, data["active"], "active")
    return clean


def _prefix_clash(name: str) -> str | None:
    """A user whose name is this one's up to a `_`, or this one's plus `_` and more (`bob`, `bob_x`).

    A user's databases and database users are named `<name>_…`: with both users, `bob_x_shop` could be
    either's, and the first to make it would take a name the other expects to own.
    """
    shorter = [name[:i] for i, char in enumerate(name) if char == "_" and i > 0]
    return db.session.scalar(select(User.name).where(
        or_(User.name.in_(shorter), User.name.startswith(name + "_", autoescape=True))).order_by(User.name).limit(1))


def _validate_nodes(value: object) -> dict[str, Node]:
    """{role: node id or name} chosen by the admin."""
    if not isinstance(value, dict):
        raise invalid("nodes", "must be an object {role: node}")
    chosen = {}
    for role, ref in value.items():
        validated(v.choice, role, "nodes", USER_ROLES)
        if ref is None or ref == "":
            continue
        # An id beyond the id column, or a name with a NUL byte, names no node (PostgreSQL would refuse
        # either in the query).
        if isinstance(ref, int) and not isinstance(ref, bool):
            node = db.session.get(Node, ref) if 0 < ref <= MAX_ID else None
        elif isinstance(ref, str):
            node = db.session.scalar(select(Node).where(Node.name == ref)) if "\x00" not in ref else None
        else:
            node = None
        if node is None:
            raise invalid(f"nodes.{role}", "no such node")
        chosen[role] = node
    return chosen


def create_user(data: object) -> User:
    """Create a panel user, place every role (formula or admin's choice) and make the OS accounts."""
    clean = _validate_fields(data, creating=True)
    plan = clean.get("plan")
    if plan is not None and "roles" not in data:
        clean["roles"] = sorted(plan.roles or [])  # the plan's roles unless the user's are given
    chosen = clean.get("nodes", {})
    unknown = sorted(set(chosen) - set(clean["roles"]))
    if unknown:
        raise invalid(f"nodes.{unknown[0]}", "the user does not have this role")
    decisions = {role: decide_placement(role, chosen.get(role)) for role in clean["roles"]}
    user = User(name=clean["name"], password_hash=accounts.hash_password(clean["password"]), level=clean["level"])
    db.session.add(user)
    db.session.flush()
    uid = allocate_uid()
    account = UserAccount(user_id=user.id, uid=uid, gid=uid, roles=clean["roles"], limits=clean["limits"],
                          plan_id=plan.id if plan is not None else None,
                          os_password_hash=os_passwords.hash_for_nodes(clean["password"]), ssh_keys=[])
    db.session.add(account)
    body = os_account_body(user, account)
    made: list[Node] = []
    try:
        for node in {d.node.id: d.node for d in decisions.values()}.values():
            try:
                call_agent(node, "POST", "/v1/users", body, what=f"the OS account of {user.name}")
            except UserDataError as exc:
                if exc.maybe_applied:  # the account may have been made there too
                    made.append(node)
                raise
            made.append(node)
    except UserDataError:
        for node in made:
            remove_os_account(node, user.name)
        db.session.rollback()
        raise
    for decision in decisions.values():
        placement.record(user.id, decision)
    db.session.commit()
    log.info("created user %s (uid %s) on %s", user.name, uid, ", ".join(n.name for n in made) or "no node")
    return user


def data_count(user: User, role: str) -> int:
    """How many indexed records of this role the user has."""
    total = 0
    for kind in KINDS.values():
        if kind.role == role:
            total += db.session.scalar(select(func.count()).select_from(kind.model)
                                       .where(kind.model.owner_id == user.id))
    return total


def update_user(user: User, data: object) -> User:
    """Change password, level, limits, roles, or move a role that holds no data to another node."""
    clean = _validate_fields(data, creating=False)
    account = account_of(user)
    if account is None and not (clean.get("roles") or clean.get("limits") or clean.get("nodes") or clean.get("plan")):
        # A panel account that owns no data (an administrator): nothing here needs a hosting account.
        clean = {k: val for k, val in clean.items() if k not in ("roles", "limits", "nodes", "plan")}
        account = UserAccount(roles=[], limits={})
    elif account is None:
        account = ensure_account(user)
    if "roles" in clean:
        for role in sorted(set(account.roles or []) - set(clean["roles"])):
            if data_count(user, role):
                raise UserDataError(409, f"{user.name} still has {role} data; delete it before removing the role.",
                                    {"roles": f"{role} still holds data"})
    for role, node in clean.get("nodes", {}).items():
        current = placement_of(user, role)
        if current is not None and current.node_id != node.id and data_count(user, role):
            raise UserDataError(409, f"{user.name}'s {role} role holds data on {current.node.name}; "
                                     "it can move only while it holds none.", {f"nodes.{role}": "role holds data"})
    if "password" in clean:
        accounts.set_password(user, clean["password"])
    if "level" in clean:
        user.level = clean["level"]
    if "limits" in clean:
        account.limits = clean["limits"]
    if "plan" in clean:
        account.plan_id = clean["plan"].id if clean["plan"] is not None else None
    if "active" in clean:
        user.suspension_report = set_active(user, clean["active"])
    if "roles" in clean:
        for role in sorted(set(account.roles or []) - set(clean["roles"])):
            _drop_role(user, role)
        account.roles = clean["roles"]
    db.session.commit()
    if "password" in clean:
        log_missed_nodes(user, "SFTP password", send_os_account(user))
    for role, node in clean.get("nodes", {}).items():
        if role in (account.roles or []):
            old = placement_of(user, role)
            ensure_role(user, role, node)
            if old is not None and old.node_id != node.id:
                _forget_node_if_unused(user, old.node)
    return user


def _drop_role(user: User, role: str) -> None:
    """Forget where an emptied role lived; the OS account goes when no other role is on that node."""
    current = placement_of(user, role)
    if current is None:
        return
    node = current.node
    db.session.delete(current)
    db.session.flush()
    _forget_node_if_unused(user, node)


def _forget_node_if_unused(user: User, node: Node) -> None:
    """Remove the OS account from a node that holds none of the user's roles any more."""
    still = db.session.scalar(select(Placement.id).where(Placement.user_id == user.id, Placement.node_id == node.id))
    if still is None and node.state == "ready":
        error = remove_os_account(node, user.name)
        if error:
            log.warning("could not remove %s's OS account from %s: %s", user.name, node.name, error)


def log_missed_nodes(user: User, what: str, report: list[dict]) -> None:
    """Log the nodes a change of the user's OS account did not reach (their next sync sends it)."""
    for entry in report:
        if entry["outcome"] != "applied":
            log.warning("%s's %s not sent to node %s (%s): %s", user.name, what, entry["node"], entry["outcome"],
                        entry["error"])


def set_active(user: User, active: bool) -> list[dict]:
    """Suspend or resume a user: panel logins, API and sessions here, sites and mailboxes on every node.

    The panel side changes whatever the nodes answer (a suspension must not wait for a cut node);
    returns the per-node report [{"node_id", "node", "outcome", "error"}]. Repeating it re-sends
    to every node (the agents' operation is idempotent).
    """
    if user.active and not active:
        user.session_epoch += 1
    user.active = active
    db.session.commit()
    report = [_suspend_on_node(user, node, not active) for node in nodes_of(user)]
    log.info("%s user %s: %s", "resumed" if active else "suspended", user.name,
             "; ".join(f"{r['node']} {r['outcome']}" for r in report) or "no nodes")
    return report


def _suspend_on_node(user: User, node: Node, suspended: bool) -> dict:
    """Tell one node's agent to suspend or resume the user's sites and mailboxes."""
    entry = {"node_id": node.id, "node": node.name, "outcome": "applied", "error": None}
    try:
        call_agent(node, "PUT", f"/v1/users/{user.name}/suspension", {"suspended": suspended},
                   what=f"the {'suspension' if suspended else 'resumption'} of {user.name}")
    except UserDataError as exc:
        entry["outcome"] = node_outcome(exc)
        entry["error"] = exc.message
    return entry


def location(user: User) -> dict[str, dict | None]:
    """Per role, the node that holds it and the recorded decision that put it there."""
    result: dict[str, dict | None] = {}
    account = account_of(user)
    for role in USER_ROLES:
        row = placement_of(user, role)
        if row is None:
            result[role] = None
            continue
        decision = row.decision
        result[role] = {
            "node_id": row.node_id, "node": row.node.name, "state": row.node.state,
            "allowed": role in ((account.roles if account else None) or []),
            "data": data_count(user, role),
            "chosen_by": decision.chosen_by if decision else None,
            "resource": decision.resource if decision else None,
            "at": iso_utc(decision.at) if decision else None,
            "candidates": decision.candidates if decision else [],
            "reasons": [placement.in_words(c, decision.resource, decision.node_id, decision.chosen_by == "admin")
                        for c in decision.candidates] if decision else [],
        }
    return result


def users_to_dicts(rows: list[User]) -> list[dict]:
    """Many users as user_to_dict shows them, with their disk use, in the order given; read set-based
    (app/services/user_usage.py), not per user."""
    shown = {row["id"]: row for row in user_usage.user_dicts([u.id for u in rows])}
    return [shown[u.id] for u in rows]


def user_to_dict(user: User) -> dict:
    """A user as the API shows it (the password is never shown), with how much disk their files take
    (a list reads many at once: app/services/user_usage.py user_dicts, the same fields)."""
    account = account_of(user)
    placed = {role: placement_of(user, role) for role in USER_ROLES}
    shown = {
        "id": user.id, "name": user.name, "level": user.level, "active": user.active,
        "roles": list(account.roles) if account else [],
        "limits": dict(account.limits or {}) if account else {},
        "plan": plan.name if (plan := plans.plan_of(account)) else None,
        "effective_limits": plans.effective_limits(account),
        "uid": account.uid if account else None, "gid": account.gid if account else None,
        "location": {role: (placed[role].node.name if placed[role] else None) for role in USER_ROLES},
        **({"nodes": user.suspension_report} if getattr(user, "suspension_report", None) is not None else {}),
    }
    used = disk_used(user)
    shown["disk_used_mb"] = None if used is None else round(used / MIB, 1)
    return shown


# What each limit counts, as a customer reads it: (limit key, what is counted, its singular); one line per
# kind of user data, in the kinds' order.
USAGE_WORDS = (("disk_mb", "MB of disk", "MB of disk"),
               *((kind.name, kind.plural, kind.label) for kind in KINDS.values()))


def usage(user: User) -> list[dict]:
    """Per limit: what the user uses of it and the limit (None: no limit), with the numbers the API shows
    (user_to_dict's effective_limits and disk_used_mb) and the counts the limit checks make; `used` is None
    for disk until a node has measured it."""
    shown = user_to_dict(user)
    limits = shown["effective_limits"]
    rows = []
    for key, plural, singular in USAGE_WORDS:
        used = shown["disk_used_mb"] if key == "disk_mb" else count_of(user, key)
        limit = limits.get(key)
        if used is None:
            words = f"not measured yet{'' if limit is None else f' (limit {limit} {plural})'}"
        elif limit is None:
            words = f"{used:g} {singular if used == 1 and key != 'disk_mb' else plural}, no limit"
        else:
            words = f"{used:g} of {limit} {singular if limit == 1 and key != 'disk_mb' else plural}"
        percent = None
        if used is not None and limit is not None:
            percent = 100 if limit == 0 else min(100, round(100 * used / limit))
        rows.append({"key": key, "used": used, "limit": limit, "words": words, "percent": percent})
    return rows


def delete_user(user: User) -> dict:
    """Remove the user's data and OS account on every node holding them; the user goes only when all succeeded.

    Returns {"deleted": bool, "nodes": [{"node_id", "node", "outcome", "removed", "error"}]}.
    """
    report = [purge_node(user, node) for node in nodes_of(user)]
    deleted = all(r["outcome"] == "applied" for r in report)
    name = user.name
    if deleted:
        db.session.delete(user)
    db.session.commit()
    log.info("deleting user %s: %s", name, "; ".join(f"{r['node']} {r['outcome']}" for r in report) or "no nodes")
    return {"deleted": deleted, "nodes": report}


def make_user(name: str, password: str, roles=DEFAULT_ROLES, level: UserLevel = UserLevel.USER, **extra) -> User:
    """Create a user from Python (tests, CLI) through the same path as the API."""
    return create_user({"name": name, "password": password, "roles": list(roles), "level": level.value, **extra})
