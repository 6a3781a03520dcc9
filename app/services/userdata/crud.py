"""Create, show, update, delete and list user data: validated here with the agent's own validators,
sent to the holding node's agent and shown in the index only once the node confirmed it."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlencode

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from agent import validation as v
from agent.client import AgentError
from agent.ops import dns, mail, web
from app.display import unicode_name
from app.extensions import db, kept_on_commit
from app.models import DomainIndex, MailDomainIndex, Node, NodeState, User
from app.services import names
from app.services import nodes as node_service
from app.services.agent_answers import ShapeError, check_listing
from app.services.userdata import databases as dbs
from app.services.userdata.checks import (
    check_disk_quota,
    check_limit,
    check_names,
    claim_aliases,
    index_aliases,
    override_asked,
    owner_zone_covers,
    recheck_names,
    record_overrides,
    resolve_owner,
)
from app.services.userdata.errors import UserDataError, invalid, object_body, validated
from app.services.userdata.index import (
    NewRow,
    claim,
    confirm_claim,
    end_write,
    get_row,
    list_index,
    release_claim,
    visible,
)
from app.services.userdata.kinds import CREATE_FIELDS, DB_KINDS, DISK_KINDS, KINDS, UPDATE_FIELDS, key_of
from app.services.userdata.owners import account_of, held_account, holding_node
from app.services.userdata.proxy import call_agent, require_ready, send_change
from app.services.userdata.records import add_record, public_record
from app.timing import waiting_on_agents

log = logging.getLogger(__name__)


@kept_on_commit()
def create(kind_name: str, actor: User, data: object) -> dict:
    """Validate, send to the holding node, then index; returns the agent's record with the index id."""
    kind = KINDS[kind_name]
    data = object_body(data, CREATE_FIELDS[kind_name])
    if kind_name in DB_KINDS:
        return _create_db(kind_name, actor, data)
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
        and "dns" in ((_account.roles if _account else None) or []) and not owner_zone_covers(owner, body[kind.key])
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


def _create_db(kind_name: str, actor: User, data: dict) -> dict:
    """A database or database user: checked here, claimed, made on the owner's db node, then indexed."""
    kind = KINDS[kind_name]
    owner = resolve_owner(actor, data)
    body, notices = dbs.new_body(kind_name, owner, data)
    dbs.require_db_role(owner)
    check_limit(owner, kind_name, body["name"])
    if kind_name == "databases":
        check_disk_quota(owner, "name")  # a database's bytes count against the quota (agent/usage.py)
    node = holding_node(owner, kind.role)
    name = body["name"]
    what = f"{owner.name}'s {kind.label} {name}"
    require_ready(node, what)
    row_id = claim(kind, owner, node, name)
    try:
        check_limit(owner, kind_name, claimed=True)
    except UserDataError:
        release_claim(kind, row_id)
        raise
    try:
        result = call_agent(node, "POST", kind.path, body, what=what)
    except UserDataError as exc:
        if not exc.maybe_applied:
            release_claim(kind, row_id)
        raise
    confirm_claim(kind, row_id, what)
    log.info("created %s %s for %s on node %s", kind.label, name, owner.name, node.name)
    shaped = _shape(kind_name, result, NewRow(row_id, owner, node))
    if notices:
        shaped["notices"] = notices
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
    path = dbs.owner_path(kind_name, row) if kind_name in DB_KINDS else f"{kind.path}/{quote(key_of(row), safe='@')}"
    result = call_agent(row.node, "GET", path, what=what)
    return _shape(kind_name, result, row)


@kept_on_commit()
def update(kind_name: str, actor: User, row_id: int, data: object) -> dict:
    """Change a web domain (aliases, PHP, docroot), a mailbox (password, quota, forwarding) or a database user
    (password, databases granted)."""
    kind = KINDS[kind_name]
    row = get_row(kind_name, actor, row_id)
    if not isinstance(data, dict):
        raise invalid("body", "must be a JSON object")
    for fixed in (kind.key, "owner"):
        if fixed in data and data[fixed] != (key_of(row) if fixed == kind.key else row.owner.name):
            raise invalid(fixed, "cannot change; delete and create it again")
    data = object_body({k: val for k, val in data.items() if k not in (kind.key, "owner")}, UPDATE_FIELDS[kind_name])
    aliases_before, overridden, notices = None, [], []
    if kind_name == "dbusers":
        body, notices = dbs.change_body(row, data)
    elif kind_name == "webdomains":
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
    path = dbs.owner_path(kind_name, row) if kind_name in DB_KINDS else f"{kind.path}/{quote(key_of(row), safe='@')}"
    try:
        result, mark_id = send_change(row.node, kind_name, key_of(row), "PUT", path, body, what)
    except UserDataError as exc:
        if aliases_before is not None and not exc.maybe_applied:
            index_aliases(row, aliases_before)
            db.session.commit()
        raise
    end_write(mark_id)
    record_overrides(actor, row.owner, overridden)
    shaped = _shape(kind_name, result, row)
    if notices:
        shaped["notices"] = notices
    return shaped


@kept_on_commit()
def delete(kind_name: str, actor: User, row_id: int) -> None:
    """Remove the record on its node, then from the index."""
    kind = KINDS[kind_name]
    row = get_row(kind_name, actor, row_id)
    what = f"{row.owner.name}'s {kind.label} {key_of(row)}"
    path = dbs.owner_path(kind_name, row) if kind_name in DB_KINDS else f"{kind.path}/{quote(key_of(row), safe='@')}"
    _, mark_id = send_change(row.node, kind_name, key_of(row), "DELETE", path, None, what)
    db.session.delete(row)
    end_write(mark_id)
    log.info("deleted %s", what)


# The Unicode form an answer adds beside a name kept as A-labels (docs/user-data.md, "Internationalised names").
UNICODE_FORMS = {"domains": "name_unicode", "webdomains": "name_unicode", "maildomains": "name_unicode",
                 "mailboxes": "address_unicode"}


def _shape(kind_name: str, result: object, row) -> dict:
    """The agent's record with the index's id, owner name and node name."""
    record = dict(result) if isinstance(result, dict) else {}
    for internal in ("hash", "password", "last_record_id", "mail_nodes"):
        record.pop(internal, None)
    if kind_name == "domains" and isinstance(record.get("records"), list):
        record["records"] = [public_record(r) for r in record["records"]]
    state = "ready" if row.claimed_at is None else "creating"
    if kind_name == "databases":
        record["connection"] = dbs.connection(row.node, record.get("name") or key_of(row))
    if kind_name in UNICODE_FORMS:
        key = KINDS[kind_name].key
        record[UNICODE_FORMS[kind_name]] = unicode_name(record.get(key) or key_of(row))
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
            items = check_listing(payload, kind.key, with_owner=kind_name != "mailboxes",
                                  db_object=dbs.DB_OBJECT.get(kind_name))
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
