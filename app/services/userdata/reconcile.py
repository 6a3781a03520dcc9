"""Reconciliation: the index made to match what each node's agent holds, the source of truth (claims
and pending marks left by a crash or a timeout are settled here, after each statistics poll)."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import quote

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select

from agent.client import AgentError
from app.extensions import db
from app.models import MailDomainIndex, Node, NodeState, PendingWrite, Placement, User
from app.models.base import utcnow
from app.queues import redis_connection
from app.services import names
from app.services import nodes as node_service
from app.services.agent_answers import ShapeError, check_listing, refused
from app.services.userdata.databases import DB_OBJECT
from app.services.userdata.index import claim_abandoned, claim_statements, settle_seconds
from app.services.userdata.kinds import KINDS, Kind, key_of

log = logging.getLogger(__name__)


def reconcile_node(node: Node) -> dict[str, int]:
    """Make the index of one node match its agent's listing; returns what changed, per action.

    The index is read before the agent so a change confirmed in between is never undone. A claim
    the node holds is confirmed ("added"); one it does not hold is left to its create while that
    may still be waiting on the node, and removed once abandoned.

    The node is trusted with what it holds, not with whose it is: every listing is checked first (a
    wrong shape leaves the index as it is), and a name is indexed for, or moved to, the owner the
    node reports only when `owner_refusal` finds nothing against that owner here. A refused row is
    logged with the reason and counted as skipped; the index keeps what it had for that name.
    """
    started = db.session.scalar(select(func.max(PendingWrite.id)).where(PendingWrite.node_id == node.id))
    before = {name: {key_of(r): r for r in db.session.scalars(select(k.model).where(k.model.node_id == node.id))}
              for name, k in KINDS.items()}
    listings = read_listings(node)
    owners = {u.name: u for u in db.session.scalars(select(User))}
    placed = {(user_id, role) for user_id, role in
              db.session.execute(select(Placement.user_id, Placement.role).where(Placement.node_id == node.id))}
    summary = {"added": 0, "removed": 0, "changed": 0, "skipped": 0}
    for name, kind in KINDS.items():
        # key → the owner the node reports (None: no panel user), and how to name them when refusing
        present: dict[str, tuple[User | None, str]] = {}
        if name == "mailboxes":
            # A mailbox is its mail domain's owner's: the domain as indexed on this node, not as listed.
            domains = dict(db.session.execute(select(MailDomainIndex.name, MailDomainIndex.owner_id)
                                              .where(MailDomainIndex.node_id == node.id)).all())
            by_id = {u.id: u for u in owners.values()}
            for item in listings[name]:
                domain = item[kind.key].rpartition("@")[2]
                owner = by_id.get(domains.get(domain))
                present[item[kind.key]] = (owner, f"its mail domain {domain} is not indexed on this node")
        else:
            present = {item[kind.key]: (owners.get(item["owner"]), f"{item['owner']} is not a panel user")
                       for item in listings[name]}
        for key, row in before[name].items():
            if key not in present:
                if row.claimed_at is not None and not claim_abandoned(row.claimed_at):
                    continue  # its create is still waiting on the node
                db.session.delete(row)
                summary["removed"] += 1
        for key, (owner, unknown) in present.items():
            row = before[name].get(key)
            if row is not None and owner is not None and row.owner_id == owner.id:
                if row.claimed_at is not None:
                    row.claimed_at = None
                    summary["added"] += 1
                continue
            reason = unknown if owner is None else owner_refusal(kind, owner, placed, key)
            if reason is not None:
                summary["skipped"] += 1
                log.warning("node %s lists %s %s; not indexed for the owner it reports: %s", node.name,
                            kind.label, key, reason)
                if row is not None and row.claimed_at is not None and claim_abandoned(row.claimed_at):
                    db.session.delete(row)  # the create it was made for never landed as made
                    summary["removed"] += 1
                continue
            if row is not None:
                if row.claimed_at is not None:
                    row.claimed_at = None
                    summary["added"] += 1
                row.owner_id = owner.id
                summary["changed"] += 1
                continue
            other = db.session.scalar(select(kind.model).where(getattr(kind.model, kind.key) == key))
            if other is not None:
                if other.node_id != node.id:
                    summary["skipped"] += 1
                    log.warning("%s %s is on node %s and indexed on node id %s", kind.label, key, node.name,
                                other.node_id)
                continue
            db.session.add(kind.model(owner_id=owner.id, node_id=node.id, **{kind.key: key}))
            summary["added"] += 1
    if started is not None:
        # A younger mark stays, and keeps the node reconciled at each poll: its write may still land.
        settled_before = utcnow() - timedelta(seconds=settle_seconds())
        db.session.execute(PendingWrite.__table__.delete().where(
            PendingWrite.node_id == node.id, PendingWrite.id <= started, PendingWrite.started_at < settled_before))
    db.session.commit()
    if any(summary[k] for k in ("added", "removed", "changed")):
        log.info("reconciled the index of node %s from its agent: %s", node.name, summary)
    return summary


def read_listings(node: Node) -> dict[str, list[dict]]:
    """The node's four listings of user data, each read up to AGENT_MAX_LISTING_BYTES and checked
    (agent_answers.check_listing); AgentError (kind "answer") for the first of the wrong shape."""
    client = node_service.agent_client(node, current_app.config["AGENT_TIMEOUT_S"])
    limit = current_app.config["AGENT_MAX_LISTING_BYTES"]
    listings = {}
    for name, kind in KINDS.items():
        if name in DB_OBJECT and "db" not in (node.roles or []):
            listings[name] = []  # only a db node holds databases
            continue
        payload = client.get(kind.path, limit=limit)[1]
        try:
            listings[name] = check_listing(payload, kind.key, with_owner=name != "mailboxes",
                                           db_object=DB_OBJECT.get(name))
        except ShapeError as exc:
            raise refused(client.base_url + kind.path, f"listing of {kind.plural}", exc) from None
    return listings


def owner_refusal(kind: Kind, owner: User, placed: set[tuple[int, str]], key: str) -> str | None:
    """Why a node's listing may not put this name of this kind in the index for this owner (None: it may).

    These are the rules a name must pass to be indexed from a node rather than from a create the
    master made: the owner is a panel user (the caller checks that) who is not an administrator and
    whose role for this kind is placed on the listing node (`placed`: its (user id, role) pairs), and
    the name registry lets that owner hold the name (names.why_not: no other owner's name, parent or
    child, no public suffix, no reverse or host name for a customer). A node holds only the data of the
    users placed on it, so it cannot hand a name to anyone else, nor another owner's name to them."""
    if owner.is_admin:
        return f"{owner.name} is an administrator, and a node does not give names to one"
    if (owner.id, kind.role) not in placed:
        return f"{owner.name}'s {kind.role} role is not placed on this node"
    if kind.name in DB_OBJECT:
        return None  # named under the owner's prefix, which the node's listing was checked for
    return names.why_not(owner, kind.name, key)


FULL_RECONCILE_S = 300
# Up to this many claims on a node are settled with a GET each; more, with its whole listings.
SETTLE_ONE_BY_ONE_MAX = 20


def settle_claims(node: Node) -> dict[str, int] | None:
    """Settle the node's claims by asking it for each claimed name, not for everything it holds (a
    create in flight is the common reason a poll finds one). Held there → confirmed; not held → kept
    while its create may still be waiting on the node, removed once abandoned. None when a claimed name
    is held there by another owner (or answered in another shape), or when there are more claims than
    asking one by one is worth: the caller reconciles the node in full, under its rules for owners."""
    claims = [(kind, row) for kind in KINDS.values() for row in db.session.scalars(
        select(kind.model).where(kind.model.node_id == node.id, kind.model.claimed_at.is_not(None)))]
    if len(claims) > SETTLE_ONE_BY_ONE_MAX:
        return None
    client = node_service.agent_client(node, current_app.config["AGENT_TIMEOUT_S"])
    summary = {"added": 0, "removed": 0, "waiting": 0}
    for kind, row in claims:
        path = f"{kind.path}/{quote(key_of(row), safe='@')}"
        status, item = client.get(path, check=False)
        statements = claim_statements(kind.model)
        if status == 200:
            held_as_claimed = (isinstance(item, dict) and item.get(kind.key) == key_of(row)
                               and item.get("owner", row.owner.name) == row.owner.name)
            if not held_as_claimed:
                db.session.rollback()
                return None
            # Core statements: the create may confirm or release its claim meanwhile.
            db.session.execute(statements.confirm, {"row_id": row.id})
            summary["added"] += 1
        elif status == 404 and claim_abandoned(row.claimed_at):
            db.session.execute(statements.release, {"row_id": row.id})
            summary["removed"] += 1
        elif status == 404:
            summary["waiting"] += 1
        else:
            raise AgentError("http", f"{path}: answered {status}", url=path, status=status, payload=item)
    db.session.commit()
    if summary["added"] or summary["removed"]:
        log.info("settled the claims on node %s from its agent: %s", node.name, summary)
    return summary


def reconcile_after_poll(node_ids: list[int]) -> dict[int, dict | str]:
    """Reconcile the nodes that answered the poll and have pending writes (all of them every few
    minutes); on the others, settle the claims they have one by one."""
    if not node_ids:
        return {}
    pending = set(db.session.scalars(select(PendingWrite.node_id).where(PendingWrite.node_id.in_(node_ids))))
    claimed = set()
    for kind in KINDS.values():
        claimed |= set(db.session.scalars(select(kind.model.node_id).distinct().where(
            kind.model.claimed_at.is_not(None), kind.model.node_id.in_(node_ids))))
    if _full_reconcile_due():
        pending = set(node_ids)
    results = {}
    for node_id in sorted(pending | claimed):
        node = db.session.get(Node, node_id)
        if node is None or node.state != NodeState.READY.value:
            continue
        try:
            settled = settle_claims(node) if node_id not in pending else None
            results[node_id] = settled if settled is not None else reconcile_node(node)
        except (AgentError, KeyError, TypeError) as exc:
            db.session.rollback()
            results[node_id] = f"not reconciled: {exc}"
            log.warning("could not reconcile the index of node %s: %s", node.name, exc)
        except Exception as exc:  # noqa: BLE001  (one node's odd answer must not stop the collector)
            db.session.rollback()
            results[node_id] = f"not reconciled: {exc!r}"
            log.exception("could not reconcile the index of node %s", node_id)
    return results


def _full_reconcile_due() -> bool:
    """True at most once per FULL_RECONCILE_S across the cluster (a Redis key marks the last one)."""
    try:
        return bool(redis_connection().set("hostfleet:userdata:full-reconcile", "1", nx=True, ex=FULL_RECONCILE_S))
    except RedisError:
        return False
