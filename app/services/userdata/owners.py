"""The owners of user data as hosting accounts: UID/GID, roles, limits, where each role is placed, the
nodes that hold their data and the disk it takes there (docs/user-data.md, "UID/GID and OS accounts").

A user has one UID/GID, allocated here from the configured range, and the same OS account on every
node that holds one of their roles.
"""

from __future__ import annotations

import itertools
import logging

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Counter, Node, Placement, User, UserAccount
from app.models.userdata import USER_ROLES
from app.services import placement, plans
from app.services.setup.paths import ADMIN_USER
from app.services.system_accounts import SYSTEM_ACCOUNTS
from app.services.uids import uid_range
from app.services.userdata.errors import UserDataError, invalid
from app.services.userdata.kinds import KINDS
from app.services.userdata.proxy import call_agent

log = logging.getLogger(__name__)


# hostfleet-sftp: the group agent/ops/sftp.py gives hosting accounts SFTP through.
RESERVED_NAMES = SYSTEM_ACCOUNTS | {ADMIN_USER, "hostfleet", "admin", "hostfleet-sftp"}
MIB = 2**20


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
    """The agent's /v1/users body for this user: the account, its SFTP password hash (null: none) and keys."""
    return {"name": user.name, "uid": account.uid, "gid": account.gid,
            "password_hash": account.os_password_hash, "ssh_keys": list(account.ssh_keys or [])}


def send_os_account(user: User) -> list[dict]:
    """Send the user's OS account (its SFTP password hash and keys with it) to every node holding them; the
    per-node report [{"node_id", "node", "outcome", "error"}], never raising halfway. A node that missed it
    gets it again from the `users` synchronizer at its next sync."""
    account = account_of(user)
    if account is None:
        return []
    body = os_account_body(user, account)
    report = []
    for node in nodes_of(user):
        entry = {"node_id": node.id, "node": node.name, "outcome": "applied", "error": None}
        try:
            call_agent(node, "POST", "/v1/users", body, what=f"the OS account of {user.name}")
        except UserDataError as exc:
            entry["outcome"], entry["error"] = node_outcome(exc), exc.message
        report.append(entry)
    return report


def ensure_role(user: User, role: str, node: Node | None = None) -> Node:
    """The node holding user's role: placed now by the formula (or on node) if not yet, with the OS account."""
    account = ensure_account(user)
    if role not in (account.roles or []):
        raise UserDataError(403, f"{user.name} is not allowed the {role} role.")
    existing = placement_of(user, role)
    if existing is not None and (node is None or existing.node_id == node.id):
        return existing.node
    decision = decide_placement(role, node)
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


def decide_placement(role: str, node: Node | None) -> placement.Decision:
    """The formula's node, or the admin's; a placement error as a 409 naming every exclusion."""
    try:
        return placement.explicit(role, node) if node is not None else placement.choose(role)
    except placement.PlacementError as exc:
        raise UserDataError(409, str(exc), {f"nodes.{role}" if node else "roles": str(exc)}) from None


def remove_os_account(node: Node, name: str) -> str | None:
    """Delete the OS account on a node; the error text when that failed."""
    try:
        call_agent(node, "DELETE", f"/v1/users/{name}", what=f"the OS account of {name}")
    except UserDataError as exc:
        if exc.status == 404:
            return None
        return exc.message
    return None


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


def disk_used(user: User) -> int | None:
    """Bytes the user's files take on the nodes (home, maildirs, databases), as each node's agent last measured them
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


def held_account(owner: User):
    """The owner's hosting account, for a caller to hold while it runs several checks on the owner:
    the session keeps only weak references to what it loaded, so each check would read it again."""
    return account_of(owner)


def holding_node(owner: User, role: str) -> Node:
    """The node that holds owner's role, placing the role now if it has none."""
    return ensure_role(owner, role)
