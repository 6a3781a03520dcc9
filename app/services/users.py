"""Panel users as hosting accounts: roles, limits, UID/GID, placement and OS accounts on nodes.

A user has one UID/GID, allocated here from the configured range, and the same OS account on
every node that holds one of their roles (SPEC §1.5). Deleting a user removes their data on
every node and reports per node.
"""

from __future__ import annotations

import itertools
import logging
import os
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import joinedload, selectinload

from agent import validation as v
from app.extensions import db
from app.models import Counter, Node, Placement, Plan, User, UserAccount, UserLevel
from app.models.base import MAX_ID, iso_utc
from app.models.userdata import LIMIT_KEYS, USER_ROLES
from app.services import accounts, placement, plans
from app.services.setup.paths import ADMIN_USER
from app.services.system_accounts import SYSTEM_ACCOUNTS
from app.services.userdata import KINDS, UserDataError, call_agent, invalid, validated

log = logging.getLogger(__name__)

DEFAULT_UID_RANGE = (10000, 59999)
RESERVED_NAMES = SYSTEM_ACCOUNTS | {ADMIN_USER, "hostfleet", "admin"}
USER_FIELDS = ("name", "password", "level", "roles", "limits", "nodes", "active", "plan")
MIB = 2**20


def uid_range() -> tuple[int, int]:
    """The UID/GID range for panel users: HOSTFLEET_UID_RANGE ("10000-59999") or the default."""
    configured = current_app.config.get("HOSTFLEET_UID_RANGE") or os.environ.get("HOSTFLEET_UID_RANGE")
    if configured:
        low, _, high = str(configured).partition("-")
        return int(low), int(high)
    return DEFAULT_UID_RANGE


def allocate_uid() -> int:
    """The next UID after the last one given that no panel user has (UID and GID are the same number).

    A deleted user's UID comes back only once the range has been given out to its end: given again at
    once, it would own whatever of the old customer's a node still has outside their home (PHP
    sessions, files in /tmp, a mail spool)."""
    low, high = uid_range()
    # A write to the counter first, so it is locked before it is read: a create running at the same time
    # waits here until this one commits, then reads the UID this one gave (PostgreSQL locks the row,
    # SQLite the database; a plain read would let both take the same UID and one fail on the unique uid).
    db.session.execute(update(Counter).where(Counter.name == "uid").values(value=Counter.value))
    taken = set(db.session.scalars(select(UserAccount.uid).where(UserAccount.uid.between(low, high))))
    last = db.session.get(Counter, "uid", populate_existing=True)
    start = max(last.value + 1 if last else low, low)
    for candidate in itertools.chain(range(start, high + 1), range(low, min(start, high + 1))):
        if candidate not in taken and candidate != 65534:
            if last is None:
                db.session.add(Counter(name="uid", value=candidate))
            else:
                last.value = candidate
            return candidate
    raise UserDataError(409, f"The UID range {low}-{high} is used up; widen HOSTFLEET_UID_RANGE.")


def account_of(user: User) -> UserAccount | None:
    """The user's hosting account, if they have one."""
    return db.session.get(UserAccount, user.id)


def ensure_account(user: User) -> UserAccount:
    """The user's hosting account, created with every role and no limits on first need."""
    account = account_of(user)
    if account is None:
        if user.name in RESERVED_NAMES:
            raise invalid("owner", f"{user.name} is a system account name on the nodes and cannot own data")
        uid = allocate_uid()
        account = UserAccount(user_id=user.id, uid=uid, gid=uid, roles=list(USER_ROLES), limits={})
        db.session.add(account)
        db.session.flush()
    return account


def limit_of(user: User, kind_name: str) -> int | None:
    """The user's effective limit for a kind of data, their own or their plan's (None: unlimited)."""
    return plans.effective_limits(account_of(user)).get(kind_name)


# Built once: every user-data create runs it (see accounts._TOKEN_WITH_USER).
_PLACEMENT_WITH_NODE = select(Placement).options(joinedload(Placement.node)).where(
    Placement.user_id == bindparam("user_id"), Placement.role == bindparam("role"))


def placement_of(user: User, role: str) -> Placement | None:
    """Where the user's role lives now."""
    return db.session.scalar(_PLACEMENT_WITH_NODE, {"user_id": user.id, "role": role})


def os_account_body(user: User, account: UserAccount) -> dict:
    """The agent's /v1/users body for this user."""
    return {"name": user.name, "uid": account.uid, "gid": account.gid}


def ensure_role(user: User, role: str, node: Node | None = None) -> Node:
    """The node holding user's role: placed now by the formula (or on node) if not yet, with the OS account."""
    account = ensure_account(user)
    if role not in (account.roles or []):
        raise UserDataError(403, f"{user.name} is not allowed the {role} role.")
    existing = placement_of(user, role)
    if existing is not None and (node is None or existing.node_id == node.id):
        return existing.node
    decision = _decide(role, node)
    call_agent(decision.node, "POST", "/v1/users", os_account_body(user, account),
               what=f"the OS account of {user.name}")
    if not user.active:
        # A suspended user's data placed now (by an administrator) is suspended there too.
        call_agent(decision.node, "PUT", f"/v1/users/{user.name}/suspension", {"suspended": True},
                   what=f"the suspension of {user.name}")
    placement.record(user.id, decision)
    db.session.commit()
    log.info("placed %s's %s role on node %s (%s)", user.name, role, decision.node.name, decision.chosen_by)
    return decision.node


def _decide(role: str, node: Node | None) -> placement.Decision:
    """The formula's node, or the admin's; a placement error as a 409 naming every exclusion."""
    try:
        return placement.explicit(role, node) if node is not None else placement.choose(role)
    except placement.PlacementError as exc:
        raise UserDataError(409, str(exc), {f"nodes.{role}" if node else "roles": str(exc)}) from None


# ---------------------------------------------------------------- validation


def _validate_fields(data: object, creating: bool) -> dict:
    """Check every given field with the shared validators; returns the normalized values."""
    from app.services.userdata import object_body

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
        clean["name"] = name
    if creating or "password" in data:
        clean["password"] = validated(v.password, data.get("password"), "password")
    if "level" in data or creating:
        clean["level"] = validated(v.choice, data.get("level", "user"), "level", ("user", "admin"))
    if "roles" in data or creating:
        roles = data.get("roles", list(USER_ROLES))
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


# ---------------------------------------------------------------- create, edit, suspend, delete


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
    decisions = {role: _decide(role, chosen.get(role)) for role in clean["roles"]}
    user = User(name=clean["name"], password_hash=accounts.hash_password(clean["password"]), level=clean["level"])
    db.session.add(user)
    db.session.flush()
    uid = allocate_uid()
    account = UserAccount(user_id=user.id, uid=uid, gid=uid, roles=clean["roles"], limits=clean["limits"],
                          plan_id=plan.id if plan is not None else None)
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
            _remove_os_account(node, user.name)
        db.session.rollback()
        raise
    for decision in decisions.values():
        placement.record(user.id, decision)
    db.session.commit()
    log.info("created user %s (uid %s) on %s", user.name, uid, ", ".join(n.name for n in made) or "no node")
    return user


def _remove_os_account(node: Node, name: str) -> str | None:
    """Delete the OS account on a node; the error text when that failed."""
    try:
        call_agent(node, "DELETE", f"/v1/users/{name}", what=f"the OS account of {name}")
    except UserDataError as exc:
        if exc.status == 404:
            return None
        return exc.message
    return None


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
        error = _remove_os_account(node, user.name)
        if error:
            log.warning("could not remove %s's OS account from %s: %s", user.name, node.name, error)


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


def nodes_of(user: User) -> list[Node]:
    """Every node holding one of the user's roles or indexed data, by id."""
    node_ids = node_ids_of([user.id]).get(user.id, set())
    return list(db.session.scalars(select(Node).where(Node.id.in_(node_ids)).order_by(Node.id)))


def node_ids_of(user_ids: list[int]) -> dict[int, set[int]]:
    """For each of these users, the ids of the nodes holding one of their roles or indexed data."""
    held: dict[int, set[int]] = {}
    pairs = list(db.session.execute(select(Placement.user_id, Placement.node_id)
                                    .where(Placement.user_id.in_(user_ids))))
    for kind in KINDS.values():
        pairs += db.session.execute(select(kind.model.owner_id, kind.model.node_id)
                                    .where(kind.model.owner_id.in_(user_ids)))
    for user_id, node_id in pairs:
        held.setdefault(user_id, set()).add(node_id)
    return held


def node_outcome(exc: UserDataError) -> str:
    """A node's line in a per-node report: no answer (503, 504) is `unavailable`, a refusal `failed`."""
    return "unavailable" if exc.status in (503, 504) else "failed"


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
        }
    return result


def users_to_dicts(rows: list[User]) -> list[dict]:
    """Many users as user_to_dict shows them, with their disk use; accounts, placements and the nodes'
    measurements are read for all of them at once, not per user."""
    ids = [u.id for u in rows]
    accounts_by_user = {a.user_id: a
                        for a in db.session.scalars(select(UserAccount).where(UserAccount.user_id.in_(ids)))}
    placed = {(p.user_id, p.role): p for p in db.session.scalars(
        select(Placement).options(selectinload(Placement.node)).where(Placement.user_id.in_(ids)))}
    reports = usage_reports()
    held = node_ids_of(ids)
    loaded_plans = {p.id: p for p in plans.all_plans()}
    shown = []
    for u in rows:
        row = user_to_dict(u, (accounts_by_user.get(u.id), {role: placed.get((u.id, role)) for role in USER_ROLES}),
                           loaded_plans)
        used = owned_bytes(u.name, reports, held.get(u.id, set()))
        row["disk_used_mb"] = None if used is None else round(used / MIB, 1)
        shown.append(row)
    return shown


def user_to_dict(user: User, preloaded: tuple[UserAccount | None, dict] | None = None,
                 loaded_plans: dict[int, Plan] | None = None) -> dict:
    """A user as the API shows it (SPEC §8.1; the password is never shown), with how much disk their
    files take (users_to_dicts fills that in for a list, from preloaded rows)."""
    account, placed = preloaded or (account_of(user), {role: placement_of(user, role) for role in USER_ROLES})
    shown = {
        "id": user.id, "name": user.name, "level": user.level, "active": user.active,
        "roles": list(account.roles) if account else [],
        "limits": dict(account.limits or {}) if account else {},
        "plan": plan.name if (plan := plans.plan_of(account, loaded_plans)) else None,
        "effective_limits": plans.effective_limits(account, loaded_plans),
        "uid": account.uid if account else None, "gid": account.gid if account else None,
        "location": {role: (placed[role].node.name if placed[role] else None) for role in USER_ROLES},
        **({"nodes": user.suspension_report} if getattr(user, "suspension_report", None) is not None else {}),
    }
    if preloaded is None:
        used = disk_used(user)
        shown["disk_used_mb"] = None if used is None else round(used / MIB, 1)
    return shown


def disk_used(user: User) -> int | None:
    """Bytes the user's files take on the nodes (home and maildirs), as each node's agent last measured them
    (about once a minute); None until a node has reported a measurement."""
    return owned_bytes(user.name, usage_reports(), node_ids_of([user.id]).get(user.id, set()))


def usage_reports() -> dict[int, dict]:
    """Every node's latest disk-use measurement ({"owners": {name: bytes}, ...}) by node id; nodes that have
    not measured yet are left out. Only that part of each node's statistics is read."""
    reports = db.session.execute(select(Node.id, Node.stats["usage"]))
    return {node_id: r for node_id, r in reports if isinstance(r, dict) and r.get("measured_at") is not None}


def owned_bytes(owner: str, reports: dict[int, dict], node_ids: set[int]) -> int | None:
    """What the owner's files take over these measurements, counting only the nodes that hold the owner's
    roles or indexed data: a node's figure for an account placed elsewhere is not believed (a node cannot
    use up a customer's quota by reporting for them; docs/security.md, the master distrusts nodes). None
    when there is no measurement yet."""
    if not reports:
        return None
    sizes = ((reports[n].get("owners") or {}).get(owner, 0) for n in node_ids if n in reports)
    return sum(size for size in sizes if isinstance(size, int) and size > 0)


def delete_user(user: User) -> dict:
    """Remove the user's data and OS account on every node holding them; the user goes only when all succeeded.

    Returns {"deleted": bool, "nodes": [{"node_id", "node", "outcome", "removed", "error"}]}.
    """
    report = [_purge_node(user, node) for node in nodes_of(user)]
    deleted = all(r["outcome"] == "applied" for r in report)
    name = user.name
    if deleted:
        db.session.delete(user)
    db.session.commit()
    log.info("deleting user %s: %s", name, "; ".join(f"{r['node']} {r['outcome']}" for r in report) or "no nodes")
    return {"deleted": deleted, "nodes": report}


def _purge_node(user: User, node: Node) -> dict:
    """Delete everything the user owns on one node, then the OS account."""
    entry = {"node_id": node.id, "node": node.name, "outcome": "applied", "removed": [], "error": None}
    what = f"{user.name}'s data"
    try:
        try:
            # One apply per service on the node, however much the user holds there.
            removed = call_agent(node, "DELETE", f"/v1/users/{user.name}/data", what=what)
        except UserDataError as exc:
            if exc.status != 404:
                raise
            removed = _purge_one_by_one(user, node, what)  # an agent older than the route
        for kind_name in PURGE_ORDER:
            kind = KINDS[kind_name]
            keys = removed.get(kind_name) or []
            for start in range(0, len(keys), 1000):  # under every database's limit of bound parameters
                chunk = keys[start:start + 1000]
                db.session.execute(kind.model.__table__.delete().where(getattr(kind.model, kind.key).in_(chunk)))
            entry["removed"] += [f"{kind.label} {key}" for key in keys]
        error = _remove_os_account(node, user.name)
        if error:
            raise UserDataError(502, error)
        for kind in KINDS.values():
            db.session.execute(kind.model.__table__.delete().where(kind.model.owner_id == user.id,
                                                                   kind.model.node_id == node.id))
        db.session.execute(Placement.__table__.delete().where(Placement.user_id == user.id,
                                                              Placement.node_id == node.id))
    except UserDataError as exc:
        entry["outcome"] = node_outcome(exc)
        entry["error"] = exc.message
    db.session.commit()
    return entry


# Mailboxes go before their mail domains (a node refuses a mail domain that still has mailboxes).
PURGE_ORDER = ("mailboxes", "maildomains", "webdomains", "domains")


def _purge_one_by_one(user: User, node: Node, what: str) -> dict[str, list[str]]:
    """What DELETE /v1/users/<name>/data does, one record per call: the owner's records as the node
    lists them, each deleted. Each deletion is a whole apply on the node."""
    mine = "?" + urlencode({"owner": user.name})  # the node lists only this owner's records
    maildomains = [d["name"] for d in call_agent(node, "GET", "/v1/maildomains" + mine, what=what)["items"]
                   if d.get("owner") == user.name]
    removed = {
        "maildomains": maildomains,
        "mailboxes": [m["address"] for m in call_agent(node, "GET", "/v1/mailboxes" + mine, what=what)["items"]
                      if m["address"].rpartition("@")[2] in maildomains],
    }
    for kind_name in ("webdomains", "domains"):
        items = call_agent(node, "GET", KINDS[kind_name].path + mine, what=what)["items"]
        removed[kind_name] = [i["name"] for i in items if i.get("owner") == user.name]
    for kind_name in PURGE_ORDER:
        for key in removed[kind_name]:
            call_agent(node, "DELETE", f"{KINDS[kind_name].path}/{key}", what=what)
    return removed


def make_user(name: str, password: str, roles=USER_ROLES, level: UserLevel = UserLevel.USER, **extra) -> User:
    """Create a user from Python (tests, CLI) through the same path as the API."""
    return create_user({"name": name, "password": password, "roles": list(roles), "level": level.value, **extra})
