"""User data proxied to the node that holds it; the master keeps only an index (SPEC §4).

Every change is validated here with the agent's own validators, sent to the holding node's
agent (signed, pinned, with timeouts) and shown in the index only after the agent confirmed it.
A create first writes its index row as a claim (the name is unique in the index, so two creates
of one name cannot both reach a node) and clears the claim once the node confirms; a change or
delete writes a PendingWrite mark for the same window. A crash or timeout there leaves the claim
or mark behind and `reconcile_node` settles it from the agent's listing: the agent is the source
of truth.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from urllib.parse import quote, urlencode

from flask import current_app
from sqlalchemy import Executable, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from agent import validation as v
from agent.client import AgentError
from agent.config import DEFAULT_MAX_CLOCK_SKEW_S
from agent.ops import dns, mail, web
from app.extensions import db, kept_on_commit, restorable_write
from app.models import (
    DomainIndex,
    MailboxIndex,
    MailDomainIndex,
    Node,
    NodeState,
    PendingWrite,
    Placement,
    User,
    WebDomainIndex,
)
from app.models.base import as_utc, utcnow
from app.services import names
from app.services import nodes as node_service
from app.services.agent_answers import ShapeError, check_listing, refused
from app.services.errors import ServiceError
from app.timing import waiting_on_agents

log = logging.getLogger(__name__)


class UserDataError(ServiceError):
    """A refused user-data request: an HTTP status, a message and the fields at fault."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None):
        super().__init__(message, status=status, fields=fields)

    @property
    def maybe_applied(self) -> bool:
        """True when the node gave no answer to a change it may have acted on (agent_failure's 504): a
        caller keeps its claim or pending mark for the poll, or undoes what it may have made."""
        return self.status == 504


def invalid(field: str, message: str) -> UserDataError:
    """A 400 naming the field."""
    return UserDataError(400, f"invalid {field}: {message}", {field: message})


@dataclass(frozen=True)
class Kind:
    """One kind of user data: its name (also its limit's name), label, index model, role, agent path, key."""

    name: str
    label: str
    model: type
    role: str
    path: str
    key: str

    @property
    def plural(self) -> str:
        return self.label + ("es" if self.label.endswith("x") else "s")


KINDS = {
    "webdomains": Kind("webdomains", "web domain", WebDomainIndex, "web", "/v1/webdomains", "name"),
    "domains": Kind("domains", "domain name", DomainIndex, "dns", "/v1/domains", "name"),
    "maildomains": Kind("maildomains", "mail domain", MailDomainIndex, "mail", "/v1/maildomains", "name"),
    "mailboxes": Kind("mailboxes", "mailbox", MailboxIndex, "mail", "/v1/mailboxes", "address"),
}
CREATE_FIELDS = {
    "webdomains": ("name", "aliases", "owner", "php", "docroot", "dns", "override"),
    "domains": ("name", "owner", "ip", "nameservers", "records", "override"),
    "maildomains": ("name", "owner", "dns", "override"),
    "mailboxes": ("address", "password", "quota_mb", "forward"),
}
UPDATE_FIELDS = {"webdomains": ("aliases", "php", "docroot", "override"),
                 "mailboxes": ("password", "quota_mb", "forward")}
RECORD_FIELDS = ("name", "type", "value", "ttl", "priority")


def key_of(row) -> str:
    """The name (or address) of an index row."""
    return row.address if isinstance(row, MailboxIndex) else row.name


# ---------------------------------------------------------------- reading the index


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


# ---------------------------------------------------------------- talking to the holding node


def require_ready(node: Node, what: str) -> None:
    """Refuse before anything is sent when the holding node is not ready."""
    if node.state != NodeState.READY.value:
        detail = f" (last poll: {node.last_poll_error})" if node.last_poll_error else ""
        raise UserDataError(
            503,
            f"Node {node.name} holds {what} and is {node.state}, not ready{detail}; nothing was changed. "
            "Try again once the node is ready.",
        )


def call_agent(node: Node, method: str, path: str, body: object = None, *, what: str) -> object:
    """One signed call to the node's agent; its refusals come back as UserDataError."""
    require_ready(node, what)
    client = node_service.agent_client(node, current_app.config["AGENT_TIMEOUT_S"])
    try:
        with waiting_on_agents():
            return client.request(method, path, json=body)[1]
    except AgentError as exc:
        raise agent_failure(node, exc, what, method) from None


def agent_failure(node: Node, exc: AgentError, what: str, method: str = "GET") -> UserDataError:
    """An agent's answer or a transport failure as a clear error naming the node. 504 means the outcome
    is unknown (a change may have been applied, also when its answer was refused as too large or too
    slow); the callers keep their claim or mark for the poll."""
    payload = exc.payload if isinstance(exc.payload, dict) else {}
    if exc.kind == "http" and exc.status is not None and exc.status < 500 and exc.status != 422:
        return UserDataError(exc.status, payload.get("error") or str(exc), payload.get("fields") or {})
    if exc.kind == "http" and exc.status == 422:
        # The service's own checker (nginx -t, named-checkzone...) refused the result; the node rolled back.
        return UserDataError(422, f"Node {node.name} refused the change for {what}: {payload.get('error') or exc}; "
                                  "nothing was changed.", payload.get("fields") or {})
    if exc.kind == "http":
        return UserDataError(502, f"Node {node.name} refused the change for {what}: "
                                  f"{payload.get('error') or exc}; nothing was changed.")
    if exc.kind == "answer" and method != "GET":
        return UserDataError(504, f"Node {node.name}'s answer to the change for {what} was refused ({exc}); the "
                                  "change may have been applied there: the index is reconciled from the node at "
                                  "its next poll.")
    if exc.kind == "answer":
        return UserDataError(502, f"Node {node.name}'s answer for {what} was refused ({exc}).")
    if exc.kind == "timeout":
        return UserDataError(504, f"Node {node.name} did not answer in time for {what} ({exc}); the change may "
                                  "have been applied there: the index is reconciled from the node at its next poll.")
    if exc.sent and method != "GET":
        return UserDataError(504, f"Node {node.name}: the connection broke after the change for {what} was sent "
                                  f"({exc}); it may have been applied there: the index is reconciled from the node "
                                  "at its next poll.")
    return UserDataError(503, f"Node {node.name} is not reachable for {what} ({exc.kind}: {exc}); "
                              "nothing was changed.")


def begin_write(node: Node, kind: str, name: str) -> int:
    """Mark (and commit) that a change to this node's data is about to be sent; the mark's id."""
    # Core statements, not the ORM: nothing reads the mark back, and it is on every write's path.
    marks = PendingWrite.__table__
    mark_id = db.session.execute(marks.insert().values(node_id=node.id, kind=kind, name=name)).inserted_primary_key[0]
    db.session.commit()
    return mark_id


def _drop_mark(mark_id: int) -> None:
    """Delete the pending mark (a reconciliation may have removed it already)."""
    db.session.execute(PendingWrite.__table__.delete().where(PendingWrite.__table__.c.id == mark_id))


def end_write(mark_id: int) -> None:
    """Commit the index change (a delete's) together with the end of its pending mark."""
    try:
        _drop_mark(mark_id)  # its autoflush writes the index change: it may collide like the commit
        db.session.commit()
    except (StaleDataError, ObjectDeletedError):
        # A reconciliation already removed the row: the node's listing no longer had it.
        db.session.rollback()
        _drop_mark(mark_id)
        db.session.commit()


def send_change(node: Node, kind: str, name: str, method: str, path: str, body: object, what: str):
    """Send one change under a pending mark; the mark stays only when the outcome is unknown."""
    mark_id = begin_write(node, kind, name)
    try:
        return call_agent(node, method, path, body, what=what), mark_id
    except UserDataError as exc:
        if not exc.maybe_applied:
            _drop_mark(mark_id)
            db.session.commit()
        raise


# ---------------------------------------------------------------- owners, limits, placement


# The named owner with their hosting account: the checks after it (limits, placement, quota) read it.
_USER_WITH_ACCOUNT = select(User).options(joinedload(User.account)).where(User.name == bindparam("name"))


def resolve_owner(actor: User, data: dict) -> User:
    """The owner of new data: the actor for users, the named user for administrators."""
    given = data.get("owner")
    if not actor.is_admin:
        if given is not None and given != actor.name:
            if isinstance(given, str):
                validated(v.username, given, "owner")
            raise invalid("owner", "you can only create data for your own account")
        return actor
    if given is None or given == "":
        raise invalid("owner", "required: the user who will own this")
    name = validated(v.username, given, "owner")
    owner = db.session.scalar(_USER_WITH_ACCOUNT, {"name": name})
    if owner is None:
        raise invalid("owner", f"no panel user {name!r}")
    return owner


# What a disk quota that is used up refuses: the kinds whose data takes disk space on the node.
DISK_KINDS = ("webdomains", "maildomains", "mailboxes")


def held_account(owner: User):
    """The owner's hosting account, for a caller to hold while it runs several checks on the owner:
    the session keeps only weak references to what it loaded, so each check would read it again."""
    from app.services.users import account_of

    return account_of(owner)


def check_limit(owner: User, kind_name: str, name: str | None = None, claimed: bool = False) -> None:
    """Refuse when the owner already has as many of this kind as their limit allows; a name that exists
    already is refused as the duplicate it is, not as over the limit. With claimed, the new row is already
    claimed (committed) and counts too: run again after the claim, so that two creates at once, each
    counting before the other claimed, cannot both pass (at worst both are refused)."""
    from app.services.users import limit_of

    limit = limit_of(owner, kind_name)
    if limit is None:
        return
    kind = KINDS[kind_name]
    count = db.session.scalar(select(func.count()).select_from(kind.model).where(kind.model.owner_id == owner.id))
    if claimed:
        count -= 1
    if count >= limit:
        if name is not None and not claimed:
            check_new_name(kind_name, name)
        raise UserDataError(409, f"{owner.name} already has {count} of {limit} allowed {kind.plural}: delete one "
                                 "or ask the administrator for a higher limit. Nothing was created.",
                            {kind.key: f"limit of {limit} {kind.plural if limit != 1 else kind.label} reached"})


def check_disk_quota(owner: User, field: str) -> None:
    """Refuse new sites and mail when the owner's files already fill their disk quota (limits.disk_mb).

    A panel-level quota: it stops new data being added through the panel; it does not stop files being
    written (that takes filesystem quotas on the nodes)."""
    from app.services.users import MIB, disk_used, limit_of

    limit = limit_of(owner, "disk_mb")
    if limit is None:
        return
    used = disk_used(owner)
    if used is not None and used >= limit * MIB:
        raise UserDataError(409, f"{owner.name}'s files take {used / MIB:.1f} MB of their {limit} MB disk quota; "
                                 "nothing was created. Free some space or ask for a larger quota.",
                            {field: f"disk quota of {limit} MB used up"})


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
def _claim_statements(model: type) -> ClaimStatements:
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
        row_id = restorable_write(_claim_statements(kind.model).insert, {
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
    if not restorable_write(_claim_statements(kind.model).confirm, {"row_id": row_id}).rowcount:
        log.warning("the index row of %s went while its node applied it (its owner was deleted, or a "
                    "reconciliation took the claim for abandoned); the next full reconciliation indexes "
                    "it from the node", what)


def release_claim(kind: Kind, row_id: int) -> None:
    """The node refused, or was never asked: the name is free again."""
    restorable_write(_claim_statements(kind.model).release, {"row_id": row_id})


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


def holding_node(owner: User, role: str) -> Node:
    """The node that holds owner's role, placing the role now if it has none."""
    from app.services.users import ensure_role

    return ensure_role(owner, role)


def object_body(data: object, allowed) -> dict:
    """A JSON object with no unknown fields."""
    try:
        return v.object_fields(data, "body", allowed)
    except v.ValidationError as exc:
        raise invalid(exc.field, exc.message) from None


def validated(func, *args):
    """Run one of the agent's validators, turning its error into a 400 naming the field."""
    try:
        return func(*args)
    except v.ValidationError as exc:
        raise invalid(exc.field, exc.message) from None


# ---------------------------------------------------------------- create, show, update, delete


@kept_on_commit()
def create(kind_name: str, actor: User, data: object) -> dict:
    """Validate, send to the holding node, then index; returns the agent's record with the index id."""
    kind = KINDS[kind_name]
    data = object_body(data, CREATE_FIELDS[kind_name])
    with_dns = validated(v.boolean, data.pop("dns", False), "dns")
    override = override_asked(actor, data)
    if kind_name == "mailboxes":
        body, owner, node = _mailbox_body(actor, data)  # a mailbox lives with its mail domain
    else:
        owner = resolve_owner(actor, data)
        body = _validate_new(kind_name, {**data, "owner": owner.name}, owner)
        node = None
    _account = held_account(owner)  # read once for the limit, placement and quota checks below
    zone_first = kind_name in ("webdomains", "maildomains") and with_dns and not actor.is_admin \
        and "dns" in ((_account.roles if _account else None) or []) and not _owner_zone_covers(owner, body[kind.key])
    overridden = check_names(actor, owner, kind_name, body, override, zone_first=zone_first)
    check_limit(owner, kind_name, body[kind.key])
    node = node or holding_node(owner, kind.role)
    if kind_name in DISK_KINDS:
        check_disk_quota(owner, "address" if kind_name == "mailboxes" else kind.key)
    name = body[kind.key]
    what = f"{owner.name}'s {kind.label} {name}"
    require_ready(node, what)
    dns_report = _zone_first(owner, name, node, mail=kind_name == "maildomains") if zone_first else None
    if kind_name == "maildomains":
        body["mail_nodes"] = mail_node_addresses()
    row_id = claim(kind, owner, node, name)  # a name already taken is refused here
    if body.get("aliases"):
        claim_aliases(kind, row_id, body["aliases"], node)
    try:
        check_limit(owner, kind_name, claimed=True)
        recheck_names(owner, kind_name, body, overridden, row_id, reveal=actor.is_admin)
    except UserDataError:
        release_claim(kind, row_id)
        raise
    try:
        result = call_agent(node, "POST", kind.path, body, what=what)
    except UserDataError as exc:
        if not exc.maybe_applied:  # otherwise the claim stays for the poll to settle
            release_claim(kind, row_id)
        raise
    confirm_claim(kind, row_id, what)
    log.info("created %s %s for %s on node %s", kind.label, name, owner.name, node.name)
    record_overrides(actor, owner, overridden)
    shaped = _shape(kind_name, result, NewRow(row_id, owner, node))
    if dns_report is not None:
        shaped["dns"] = dns_report
    elif with_dns:
        shaped["dns"] = zone_records_for(owner, name, node, mail=kind_name == "maildomains")
    return shaped


def mail_node_addresses() -> list[str]:
    """The IP addresses of the cluster's mail nodes: a hosted mail domain whose MX points at one of them
    (or at its own node) keeps its mail on its node; any other is delivered by DNS (exim4.conf.j2)."""
    addresses = []
    for node in db.session.scalars(select(Node).order_by(Node.id)):
        if "mail" in (node.roles or []):
            try:
                addresses.append(v.ip_address(node.address, "address"))
            except v.ValidationError:
                continue  # a host name: its own node still knows its addresses
    return addresses[: mail.MAX_MAIL_NODES]


def override_asked(actor: User, data: dict) -> bool:
    """The request's `override` (an administrator setting the name registry's refusals aside); refused
    for everyone else."""
    override = validated(v.boolean, data.pop("override", False), "override")
    if override and not actor.is_admin:
        raise UserDataError(403, "invalid override: only an administrator can override the name rules",
                            {"override": "only an administrator can override the name rules"})
    return override


def _owner_zone_covers(owner: User, name: str) -> bool:
    """True when one of the owner's confirmed zones is the name or a parent of it."""
    return db.session.scalar(select(DomainIndex.id).where(
        DomainIndex.owner_id == owner.id, DomainIndex.claimed_at.is_(None),
        DomainIndex.name.in_(names.lineage(name))).limit(1)) is not None


def check_names(actor: User, owner: User, kind_name: str, body: dict, override: bool,
                web_domain_id: int | None = None, zone_first: bool = False) -> list[tuple[str, str, str]]:
    """The name registry's rules for a new record's name and aliases (or a web domain's new aliases):
    refused as a UserDataError naming the field; what an administrator's override set aside, as
    (kind, name, refusal) to be recorded once the change is made."""
    if kind_name == "mailboxes":
        return []
    checks = [] if web_domain_id is not None else [(kind_name, "name", body["name"])]
    checks += [("aliases", "aliases", alias) for alias in body.get("aliases") or []]
    overridden = []
    for kind, field, name in checks:
        under_new_zone = zone_first and (name == body["name"] or name.endswith("." + body["name"]))
        try:
            refusal = names.check(actor, owner, kind, name, override=override, web_domain_id=web_domain_id,
                                  zone_to_come=under_new_zone)
        except names.NameRefused as exc:
            raise UserDataError(exc.status, exc.message, {field: exc.message}) from None
        if refusal:
            overridden.append((kind, name, refusal))
    return overridden


def recheck_names(owner: User, kind_name: str, body: dict, overridden: list[tuple[str, str, str]],
                  web_domain_id: int, reveal: bool = False) -> None:
    """After the claim (or the aliases' indexing) is committed, the one-owner rule once more for each new
    name an override did not set aside: another owner's related name may have been claimed between
    check_names and this claim (names.recheck). 409 naming the field."""
    if kind_name == "mailboxes":
        return
    set_aside = {(kind, name) for kind, name, _ in overridden}
    checks = [(kind_name, "name", body["name"])] if "name" in body else []
    checks += [("aliases", "aliases", alias) for alias in body.get("aliases") or []]
    for kind, field, name in checks:
        if (kind, name) in set_aside:
            continue
        try:
            names.recheck(owner, kind, name, web_domain_id if kind in ("webdomains", "aliases") else None,
                          reveal=reveal)
        except names.NameRefused as exc:
            raise UserDataError(exc.status, exc.message, {field: exc.message}) from None


def record_overrides(actor: User, owner: User, overridden: list[tuple[str, str, str]]) -> None:
    """Keep each refusal an administrator set aside, once the change is made."""
    for kind, name, refusal in overridden:
        names.record_override(actor, owner, kind, name, refusal)


def claim_aliases(kind: Kind, row_id: int, aliases: list[str], node: Node) -> None:
    """Index a new web domain's aliases with its claim (released with it: they cascade)."""
    try:
        names.set_aliases(row_id, aliases)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        release_claim(kind, row_id)
        raise UserDataError(409, f"an alias of {', '.join(aliases)} was just taken by another web domain; "
                                 f"nothing was sent to node {node.name}", {"aliases": "taken by another web domain"})\
            from None


def _zone_first(owner: User, host: str, node: Node, mail: bool) -> dict:
    """The zone a customer's new web or mail domain needs, made before the domain (with its A/AAAA, or
    `mail` and MX, records when the node's address is an IP); what was done, as `dns` answers it."""
    records = []
    try:
        address = v.ip_address(node.address, "address")
    except v.ValidationError:
        address = None
    if address is not None:
        family = "AAAA" if ":" in address else "A"
        records = [{"name": "mail", "type": family, "value": address},
                   {"name": "@", "type": "MX", "value": f"mail.{host}.", "priority": 10}] if mail else []
    body = {"name": host, "owner": owner.name, "records": records} | ({"ip": address} if address else {})
    zone = create("domains", owner, body)
    return {"zone": zone["name"], "created_zone": True, "records": len(zone.get("records", []))}


def zone_records_for(owner: User, host: str, node: Node, mail: bool) -> dict:
    """DNS for a new web or mail domain: records in the owner's zone holding the name, or a new zone.

    A web domain gets an A/AAAA record to its node; a mail domain `mail.<name>` to its node and an
    MX to that. The domain itself is kept whatever happens here; the answer says what was done.
    """
    from app.services.users import account_of

    account = account_of(owner)
    if "dns" not in ((account.roles if account else None) or []):
        return {"skipped": f"{owner.name} does not have the dns role"}
    try:
        address = v.ip_address(node.address, "address")
    except v.ValidationError:
        return {"skipped": f"node {node.name}'s address {node.address} is not an IP address"}
    family = "AAAA" if ":" in address else "A"
    zones = db.session.scalars(select(DomainIndex).where(DomainIndex.owner_id == owner.id,
                                                         DomainIndex.claimed_at.is_(None))).all()
    holding = max((z for z in zones if host == z.name or host.endswith("." + z.name)),
                  key=lambda z: len(z.name), default=None)
    try:
        if holding is None:
            extra = ([{"name": "mail", "type": family, "value": address},
                      {"name": "@", "type": "MX", "value": f"mail.{host}.", "priority": 10}] if mail else [])
            zone = create("domains", owner, {"name": host, "owner": owner.name, "ip": address, "records": extra})
            return {"zone": zone["name"], "created_zone": True, "records": len(zone.get("records", []))}
        relative = "@" if host == holding.name else host[: -len(holding.name) - 1]
        if mail:
            mail_host = "mail" if relative == "@" else f"mail.{relative}"
            records = [{"name": mail_host, "type": family, "value": address},
                       {"name": relative, "type": "MX", "value": f"mail.{host}.", "priority": 10}]
        else:
            records = [{"name": relative, "type": family, "value": address}]
        for record in records:
            add_record(owner, holding.id, record)
        return {"zone": holding.name, "created_zone": False, "records": len(records)}
    except UserDataError as exc:
        return {"error": exc.message}


def _validate_new(kind_name: str, data: dict, owner: User) -> dict:
    """The agent's validator for a new record of this kind, run on the master first."""
    users = {owner.name}
    if kind_name == "webdomains":
        return validated(web.validate, data, users)
    if kind_name == "domains":
        domain = validated(dns.validate_domain, data, users)
        # The agent numbers and canonicalizes records itself; send what was given.
        return {k: data[k] for k in data if data[k] is not None} | {"name": domain["name"], "owner": owner.name}
    return validated(mail.validate_domain, data, users)


def _mailbox_body(actor: User, data: dict) -> tuple[dict, User, Node]:
    """A new mailbox: in a mail domain the actor may see; the password is checked, never kept."""
    address = validated(v.email_address, data.get("address"), "address")
    domain_name = address.rpartition("@")[2]
    query = visible(KINDS["maildomains"], actor).where(MailDomainIndex.name == domain_name)
    if actor.is_admin:
        # The owner is someone else: their account comes with them (the mailbox's limit and quota
        # checks read it). A user's own account is read once for the request, or came with their token.
        query = query.options(joinedload(MailDomainIndex.owner).joinedload(User.account))
    domain = db.session.scalar(query)
    if domain is None:
        raise invalid("address", f"{domain_name} is not one of your mail domains")
    validated(v.password, data.get("password"), "password")
    quota = validated(v.integer, data.get("quota_mb", 0), "quota_mb", 0, mail.MAX_QUOTA_MB)
    forward = validated(mail.validate_forward, data.get("forward"), address)
    body = {"address": address, "password": data["password"], "quota_mb": quota, "forward": forward}
    return body, domain.owner, domain.node


def show(kind_name: str, actor: User, row_id: int) -> dict:
    """One record as its node's agent holds it, with the index id and owner."""
    kind = KINDS[kind_name]
    row = get_row(kind_name, actor, row_id)
    what = f"{row.owner.name}'s {kind.label} {key_of(row)}"
    result = call_agent(row.node, "GET", f"{kind.path}/{quote(key_of(row), safe='@')}", what=what)
    return _shape(kind_name, result, row)


@kept_on_commit()
def update(kind_name: str, actor: User, row_id: int, data: object) -> dict:
    """Change a web domain (aliases, PHP, docroot) or a mailbox (password, quota, forwarding)."""
    kind = KINDS[kind_name]
    row = get_row(kind_name, actor, row_id)
    if not isinstance(data, dict):
        raise invalid("body", "must be a JSON object")
    for fixed in (kind.key, "owner"):
        if fixed in data and data[fixed] != (key_of(row) if fixed == kind.key else row.owner.name):
            raise invalid(fixed, "cannot change; delete and create it again")
    data = object_body({k: val for k, val in data.items() if k not in (kind.key, "owner")}, UPDATE_FIELDS[kind_name])
    aliases_before, overridden = None, []
    if kind_name == "webdomains":
        override = override_asked(actor, data)
        checked = validated(web.validate, {"name": row.name, "owner": row.owner.name, **data}, {row.owner.name})
        body = {k: checked[k] for k in data}
        if "aliases" in body:
            aliases_before = names.aliases_of(row.id)
            added = [a for a in body["aliases"] if a not in aliases_before]
            overridden = check_names(actor, row.owner, kind_name, {"aliases": added}, override, web_domain_id=row.id)
            index_aliases(row, body["aliases"])
            db.session.commit()  # visible to the other creates' rechecks before this one's
            try:
                recheck_names(row.owner, kind_name, {"aliases": added}, overridden, row.id, reveal=actor.is_admin)
            except UserDataError:
                index_aliases(row, aliases_before)
                db.session.commit()
                raise
    else:
        body = {}
        if "password" in data:
            body["password"] = validated(v.password, data["password"], "password")
        if "quota_mb" in data:
            body["quota_mb"] = validated(v.integer, data["quota_mb"], "quota_mb", 0, mail.MAX_QUOTA_MB)
        if "forward" in data:
            body["forward"] = validated(mail.validate_forward, data["forward"], key_of(row))
    what = f"{row.owner.name}'s {kind.label} {key_of(row)}"
    path = f"{kind.path}/{quote(key_of(row), safe='@')}"
    try:
        result, mark_id = send_change(row.node, kind_name, key_of(row), "PUT", path, body, what)
    except UserDataError as exc:
        if aliases_before is not None and not exc.maybe_applied:
            index_aliases(row, aliases_before)
            db.session.commit()
        raise
    end_write(mark_id)
    record_overrides(actor, row.owner, overridden)
    return _shape(kind_name, result, row)


def index_aliases(row: WebDomainIndex, aliases: list[str]) -> None:
    """Index a web domain's aliases (committed with the change's pending mark); 409 naming the field when
    another web domain took one meanwhile."""
    try:
        names.set_aliases(row.id, aliases)
    except IntegrityError:
        db.session.rollback()
        raise UserDataError(409, f"an alias of {', '.join(aliases)} was just taken by another web domain; nothing "
                                 "was changed", {"aliases": "taken by another web domain"}) from None


@kept_on_commit()
def delete(kind_name: str, actor: User, row_id: int) -> None:
    """Remove the record on its node, then from the index."""
    kind = KINDS[kind_name]
    row = get_row(kind_name, actor, row_id)
    what = f"{row.owner.name}'s {kind.label} {key_of(row)}"
    path = f"{kind.path}/{quote(key_of(row), safe='@')}"
    _, mark_id = send_change(row.node, kind_name, key_of(row), "DELETE", path, None, what)
    db.session.delete(row)
    end_write(mark_id)
    log.info("deleted %s", what)


def _shape(kind_name: str, result: object, row) -> dict:
    """The agent's record with the index's id, owner name and node name."""
    record = dict(result) if isinstance(result, dict) else {}
    for internal in ("hash", "password", "last_record_id", "mail_nodes"):
        record.pop(internal, None)
    if kind_name == "domains" and isinstance(record.get("records"), list):
        record["records"] = [public_record(r) for r in record["records"]]
    state = "ready" if row.claimed_at is None else "creating"
    return {**record, "id": row.id, "owner": row.owner.name, "node": row.node.name, "state": state}


# Most owners one list asks a node for by name (`?owner=` repeated); a page with more there asks for all.
LIST_OWNERS_MAX = 50


def list_full(kind_name: str, actor: User, page: int = 1, per_page: int = 100) -> tuple[list[dict], int]:
    """One page of the records the actor may see, by name, with their details read from the holding
    nodes in parallel, and the total count. A node that cannot answer still lists its records from
    the index, marked unavailable.
    """
    kind = KINDS[kind_name]
    rows, total = list_index(kind_name, actor, page, per_page)
    nodes = {row.node_id: row.node for row in rows}
    timeout = current_app.config["AGENT_TIMEOUT_S"]
    clients = {nid: node_service.agent_client(n, timeout) for nid, n in nodes.items()
               if n.state == NodeState.READY.value}
    # Each node lists only the records of the owners this page has there (one, for a user's own list),
    # not every user's it holds; a page of more owners on one node than a query is worth takes all.
    owners: dict[int, set[str]] = {}
    for row in rows:
        owners.setdefault(row.node_id, set()).add(row.owner.name)
    paths = {nid: f"{kind.path}?{urlencode([('owner', n) for n in sorted(names)])}"
             if len(names) <= LIST_OWNERS_MAX else kind.path for nid, names in owners.items()}

    limit = current_app.config["AGENT_MAX_LISTING_BYTES"]

    def fetch(node_id):
        try:
            payload = clients[node_id].get(paths[node_id], limit=limit)[1]
            items = check_listing(payload, kind.key, with_owner=kind_name != "mailboxes")
        except AgentError:
            return None
        except ShapeError as exc:
            log.warning("the %s listing of node id %s is not shown: %s", kind.label, node_id, exc)
            return None
        return {item[kind.key]: item for item in items}

    listings = {}
    with waiting_on_agents():
        if len(clients) == 1:
            node_id = next(iter(clients))
            listings[node_id] = fetch(node_id)
        elif clients:
            with ThreadPoolExecutor(max_workers=min(16, len(clients))) as pool:
                listings = dict(zip(clients, pool.map(fetch, clients), strict=True))
    items = []
    for row in rows:
        listing = listings.get(row.node_id)
        detail = listing.get(key_of(row)) if listing else None
        item = _shape(kind_name, detail or {kind.key: key_of(row)}, row)
        item["available"] = listing is not None
        items.append(item)
    return items, total


# ---------------------------------------------------------------- DNS records


def _zone_row(actor: User, domain_id: int) -> DomainIndex:
    """A zone the actor may see."""
    return get_row("domains", actor, domain_id)


def list_records(actor: User, domain_id: int) -> list[dict]:
    """The records of a zone, read from its node."""
    row = _zone_row(actor, domain_id)
    zone = call_agent(row.node, "GET", f"/v1/domains/{row.name}", what=f"{row.owner.name}'s domain {row.name}")
    return [public_record(r) for r in zone["records"]]


def public_record(record: dict) -> dict:
    """A record as the API shows it (its data as `value`)."""
    return {"id": record["id"], "name": record["name"], "type": record["type"],
            "value": record.get("data", record.get("value")), "ttl": record["ttl"],
            "priority": record.get("priority")}


@kept_on_commit()
def add_record(actor: User, domain_id: int, data: object) -> dict:
    """Add a record to a zone, checked here with the agent's validators first."""
    row = _zone_row(actor, domain_id)
    data = object_body(data, RECORD_FIELDS)
    validated(dns.validate_record, row.name, data, 0)
    what = f"{row.owner.name}'s domain {row.name}"
    result, mark_id = send_change(row.node, "domains", row.name, "POST", f"/v1/domains/{row.name}/records", data, what)
    end_write(mark_id)
    return public_record(result)


@kept_on_commit()
def update_record(actor: User, domain_id: int, record_id: int, data: object) -> dict:
    """Replace a record's fields (the zone's serial goes up on the node)."""
    row = _zone_row(actor, domain_id)
    data = object_body(data, (*RECORD_FIELDS, "id"))
    what = f"{row.owner.name}'s domain {row.name}"
    zone = call_agent(row.node, "GET", f"/v1/domains/{row.name}", what=what)
    old = next((r for r in zone["records"] if r["id"] == record_id), None)
    if old is None:
        raise UserDataError(404, f"No record {record_id} in {row.name}.")
    data.pop("id", None)
    if "value" not in data:
        raise invalid("value", "required")
    merged = {"name": old["name"], "type": old["type"], "ttl": old["ttl"], "priority": old["priority"], **data}
    validated(dns.validate_record, row.name, merged, record_id)
    path = f"/v1/domains/{row.name}/records/{record_id}"
    result, mark_id = send_change(row.node, "domains", row.name, "PUT", path, data, what)
    end_write(mark_id)
    return public_record(result)


@kept_on_commit()
def delete_record(actor: User, domain_id: int, record_id: int) -> None:
    """Remove one record."""
    row = _zone_row(actor, domain_id)
    what = f"{row.owner.name}'s domain {row.name}"
    path = f"/v1/domains/{row.name}/records/{record_id}"
    _, mark_id = send_change(row.node, "domains", row.name, "DELETE", path, None, what)
    end_write(mark_id)


# ---------------------------------------------------------------- reconciliation


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
        payload = client.get(kind.path, limit=limit)[1]
        try:
            listings[name] = check_listing(payload, kind.key, with_owner=name != "mailboxes")
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
        statements = _claim_statements(kind.model)
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
    from redis.exceptions import RedisError

    from app.queues import redis_connection

    try:
        return bool(redis_connection().set("hostfleet:userdata:full-reconcile", "1", nx=True, ex=FULL_RECONCILE_S))
    except RedisError:
        return False


def users_holding(node_id: int) -> list[str]:
    """Names of the users whose roles or indexed data live on this node (a node removal must wait)."""
    ids = set(db.session.scalars(select(Placement.user_id).where(Placement.node_id == node_id)))
    for kind in KINDS.values():
        ids |= set(db.session.scalars(select(kind.model.owner_id).where(kind.model.node_id == node_id)))
    if not ids:
        return []
    return sorted(db.session.scalars(select(User.name).where(User.id.in_(ids))))
