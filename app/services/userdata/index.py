"""The master's index of user data: what a user may see of it, claims of creates in flight and the
pending marks of changes in flight (docs/user-data.md, "A request, step by step")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from flask import current_app
from sqlalchemy import Executable, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from agent.config import DEFAULT_MAX_CLOCK_SKEW_S
from app.extensions import db, restorable_write
from app.models import Node, PendingWrite, Placement, User
from app.models.base import as_utc, utcnow
from app.services.userdata.errors import UserDataError
from app.services.userdata.kinds import KINDS, Kind, key_of

log = logging.getLogger(__name__)


def visible(kind: Kind, actor: User, claims: bool = False):
    """The index rows of kind this actor may see: all for admins, their own for users. Claims (creates
    their node has not confirmed yet) only when asked: lists show them as being created."""
    # Owner and node come with the row: templates and API shapes show both for every row. The node's
    # statistics (the largest column, repeated on every row of the join) are not needed for either.
    query = select(kind.model).options(joinedload(kind.model.owner), joinedload(kind.model.node).defer(Node.stats))
    if not claims:
        query = query.where(kind.model.claimed_at.is_(None))
    if not actor.is_admin:
        query = query.where(kind.model.owner_id == actor.id)
    return query


def list_index(kind_name: str, actor: User, page: int = 1, per_page: int = 100) -> tuple[list, int]:
    """One page of the index rows the actor may see, by name, and the total count; a create still in
    flight is listed too (its row's claimed_at is set), so a name refused as "being created" is seen."""
    kind = KINDS[kind_name]
    query = visible(kind, actor, claims=True)
    count = select(func.count()).select_from(kind.model)
    if not actor.is_admin:
        count = count.where(kind.model.owner_id == actor.id)
    total = db.session.scalar(count)
    column = getattr(kind.model, kind.key)
    rows = db.session.scalars(query.order_by(column).limit(per_page).offset((max(page, 1) - 1) * per_page)).all()
    return rows, total


def get_row(kind_name: str, actor: User, row_id: int):
    """One index row the actor may see; 404 otherwise (other users' data is not revealed), 409 while
    its create is in flight."""
    kind = KINDS[kind_name]
    row = db.session.scalar(visible(kind, actor, claims=True).where(kind.model.id == row_id))
    if row is None:
        raise UserDataError(404, f"No {kind.label} with id {row_id}.")
    if row.claimed_at is not None:
        raise UserDataError(409, f"{kind.label} {key_of(row)} is being created on node {row.node.name}: it can be "
                                 "opened once the node has confirmed it. If that node did not answer, the next "
                                 "statistics poll settles it from what the node holds (a create the node never "
                                 f"applied is dropped {settle_seconds()} s after it began).")
    return row


def check_new_name(kind_name: str, name: str) -> None:
    """Refuse a name the index already holds anywhere in the cluster, or that a create in flight claimed."""
    kind = KINDS[kind_name]
    held = db.session.execute(select(kind.model.claimed_at).where(getattr(kind.model, kind.key) == name)).first()
    if held is not None:
        state = "exists" if held.claimed_at is None else "is being created"
        raise UserDataError(409, f"{kind.label} {name} {state}", {kind.key: f"{name} {state}"})


@dataclass(frozen=True)
class NewRow:
    """A created index row as an answer shows it (its id, owner and node), without loading it back."""

    id: int
    owner: User
    node: Node
    claimed_at: None = None  # confirmed before it is shown


# The agent call's read timeout plus this margin (its connect timeout and the master's own work) is
# the longest a create can still be waiting on its node; settle_seconds() adds the network's delays.
CLAIM_MARGIN_S = 30


@dataclass(frozen=True)
class ClaimStatements:
    """The three writes of a claim on one index table."""

    insert: Executable
    confirm: Executable
    release: Executable


@cache
def claim_statements(model: type) -> ClaimStatements:
    """A claim's insert, confirmation and release on one index table: built once, as every create runs
    two of them (building a statement costs about what running it does)."""
    table = model.__table__
    return ClaimStatements(
        insert=table.insert(),
        confirm=table.update().where(table.c.id == bindparam("row_id")).values(claimed_at=None),
        release=table.delete().where(table.c.id == bindparam("row_id"), table.c.claimed_at.is_not(None)),
    )


def claim(kind: Kind, owner: User, node: Node, name: str) -> int:
    """Write the new index row as a claim and commit it, before the node is asked; the row's id.

    The index's unique name makes this the check that the name is free: of two creates of one name
    at once, only one claims it, so only one reaches a node."""
    try:
        row_id = restorable_write(claim_statements(kind.model).insert, {
            "owner_id": owner.id, "node_id": node.id, "claimed_at": utcnow(), kind.key: name,
        }).inserted_primary_key[0]
    except IntegrityError as exc:
        db.session.rollback()
        check_new_name(kind.name, name)  # taken: 409 naming the field
        raise UserDataError(409, f"{kind.label} {name} could not be indexed ({exc.orig}); nothing was sent to "
                                 f"node {node.name}. Try again.") from None
    return row_id


def confirm_claim(kind: Kind, row_id: int, what: str) -> None:
    """The node holds it now: the claim becomes a row the index shows."""
    if not restorable_write(claim_statements(kind.model).confirm, {"row_id": row_id}).rowcount:
        log.warning("the index row of %s went while its node applied it (its owner was deleted, or a "
                    "reconciliation took the claim for abandoned); the next full reconciliation indexes "
                    "it from the node", what)


def release_claim(kind: Kind, row_id: int) -> None:
    """The node refused, or was never asked: the name is free again."""
    restorable_write(claim_statements(kind.model).release, {"row_id": row_id})


def settle_seconds() -> int:
    """How long after a write began it may still land on its node, so its claim or pending mark stands.

    Not only while the master waits (its timeout plus CLAIM_MARGIN_S): a request held up in the network
    (a cut link's retransmits) can reach the agent after the master gave up, and the agent takes a signed
    request for its clock-skew window either side of the signing time, by a clock that may itself be
    that far behind the master's: two windows after the write began, nothing of it can land any more.
    """
    return int(max(current_app.config["AGENT_TIMEOUT_S"] + CLAIM_MARGIN_S, 2 * DEFAULT_MAX_CLOCK_SKEW_S))


def claim_abandoned(claimed_at: datetime) -> bool:
    """True for a claim no create is still waiting on."""
    return as_utc(claimed_at) < utcnow() - timedelta(seconds=settle_seconds())


def begin_write(node: Node, kind: str, name: str) -> int:
    """Mark (and commit) that a change to this node's data is about to be sent; the mark's id."""
    # Core statements, not the ORM: nothing reads the mark back, and it is on every write's path.
    marks = PendingWrite.__table__
    mark_id = db.session.execute(marks.insert().values(node_id=node.id, kind=kind, name=name)).inserted_primary_key[0]
    db.session.commit()
    return mark_id


def drop_mark(mark_id: int) -> None:
    """Delete the pending mark (a reconciliation may have removed it already)."""
    db.session.execute(PendingWrite.__table__.delete().where(PendingWrite.__table__.c.id == mark_id))


def end_write(mark_id: int) -> None:
    """Commit the index change (a delete's) together with the end of its pending mark."""
    try:
        drop_mark(mark_id)  # its autoflush writes the index change: it may collide like the commit
        db.session.commit()
    except (StaleDataError, ObjectDeletedError):
        # A reconciliation already removed the row: the node's listing no longer had it.
        db.session.rollback()
        drop_mark(mark_id)
        db.session.commit()


def users_holding(node_id: int) -> list[str]:
    """Names of the users whose roles or indexed data live on this node (a node removal must wait)."""
    ids = set(db.session.scalars(select(Placement.user_id).where(Placement.node_id == node_id)))
    for kind in KINDS.values():
        ids |= set(db.session.scalars(select(kind.model.owner_id).where(kind.model.node_id == node_id)))
    if not ids:
        return []
    return sorted(db.session.scalars(select(User.name).where(User.id.in_(ids))))
