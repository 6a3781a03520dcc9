"""The name registry: who may hold a name, across zones, web domains, their aliases and mail domains.

A name, its parents and its children belong to one owner, whatever the kind: while alice holds
`victim.example` in any kind, no other owner may hold `victim.example`, `shop.victim.example` or
`example`... in any kind. A name that is a public suffix (`com`, `co.uk`, `github.io`: the Public
Suffix List, both sections) is refused to everyone; reverse zones (`in-addr.arpa`, `ip6.arpa` and
below) and the panel's and nodes' own host names (with their parents and children) to customers. A
web or mail name (and every alias) also needs its covering zone (the zone that is the name or its
nearest parent) held by the same owner, or a TXT record `_hostfleet-challenge.<name>` with the owner's
token, or an administrator creating it. An administrator may override the one-owner rule and the host
names with an explicit `override`, which is recorded (NameOverride).

Other code asks `may_hold(owner, kind, name)` (or `why_not` for the reason): the rules that hold for a
name already made (not the covering zone or the proof, which a create checks once).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from functools import cache

from flask import current_app, g
from publicsuffixlist import PublicSuffixList
from sqlalchemy import and_, bindparam, literal, or_, select, union_all

from app.extensions import db
from app.models import DomainIndex, MailDomainIndex, NameOverride, Node, User, WebDomainAlias, WebDomainIndex
from app.models.base import utcnow
from app.models.userdata import reversed_name
from app.services.errors import ServiceError

log = logging.getLogger(__name__)

# The registry's kinds (the user-data kinds' names, and web domain aliases) and how messages name them.
LABELS = {"domains": "zone", "webdomains": "web domain", "aliases": "web domain alias", "maildomains": "mail domain"}
# Kinds whose names need a covering zone held by the same owner (or a proof, or an administrator).
NEEDS_ZONE = ("webdomains", "aliases", "maildomains")
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")
CHALLENGE_LABEL = "_hostfleet-challenge"


class NameRefused(ServiceError):
    """A name the registry refuses: an HTTP status, the message, and whether an administrator's
    override may set the refusal aside."""

    def __init__(self, status: int, message: str, overridable: bool = False):
        super().__init__(message, status=status)
        self.overridable = overridable


@dataclass(frozen=True)
class Holder:
    """A name the index holds: its kind, owner, and (for an alias) the web domain it belongs to."""

    kind: str
    name: str
    owner_id: int
    owner: str
    web_domain_id: int | None
    web_domain: str | None

    def describe(self) -> str:
        """How a message names it: "alice's zone victim.example"."""
        what = f"{self.owner}'s {LABELS[self.kind]} {self.name}"
        return f"{what} (of web domain {self.web_domain})" if self.kind == "aliases" else what


@cache
def public_suffixes() -> PublicSuffixList:
    """The Public Suffix List the package bundles (both its ICANN and private sections), loaded once."""
    return PublicSuffixList()


def lineage(name: str) -> list[str]:
    """The name and each of its parents, nearest first: shop.example.com, example.com, com."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def related(a: str, b: str) -> bool:
    """True when a and b are the same name or one is under the other."""
    return a == b or a.endswith("." + b) or b.endswith("." + a)


@cache
def _holders_statement():
    """One statement for every indexed name that is a name, one of its parents, or under it."""
    selects = []
    for kind, model in (("domains", DomainIndex), ("webdomains", WebDomainIndex), ("maildomains", MailDomainIndex)):
        selects.append(
            select(literal(kind).label("kind"), model.name, model.owner_id, User.name.label("owner"),
                   model.id.label("web_domain_id") if kind == "webdomains" else literal(None).label("web_domain_id"),
                   literal(None).label("web_domain"))
            .join(User, User.id == model.owner_id)
            .where(_around(model.reversed_name)))
    selects.append(
        select(literal("aliases").label("kind"), WebDomainAlias.name, WebDomainIndex.owner_id,
               User.name.label("owner"), WebDomainIndex.id.label("web_domain_id"),
               WebDomainIndex.name.label("web_domain"))
        .join(WebDomainIndex, WebDomainIndex.id == WebDomainAlias.webdomain_id)
        .join(User, User.id == WebDomainIndex.owner_id)
        .where(_around(WebDomainAlias.reversed_name)))
    return union_all(*selects)


def _around(column):
    """The column is the reversed name, one of its parents', or starts with the reversed name and a dot."""
    return or_(column.in_(bindparam("lineage", expanding=True)),
               and_(column > bindparam("below_from"), column < bindparam("below_to")))


def holders(name: str) -> list[Holder]:
    """Every indexed name (claims included) that is this name, a parent of it or under it, in any kind."""
    reversed_self = reversed_name(name)
    rows = db.session.execute(_holders_statement(), {
        "lineage": [reversed_name(n) for n in lineage(name)],
        # "." is followed by "/" in byte order: every name below starts with the reversed name and a dot.
        "below_from": reversed_self + ".", "below_to": reversed_self + "/",
    }).all()
    return [Holder(r.kind, r.name, r.owner_id, r.owner, r.web_domain_id, r.web_domain) for r in rows]


def reserved_host_names() -> set[str]:
    """The panel's own host names (PANEL_HOST_NAMES, else this host's) and the nodes' names and addresses
    that are host names: customers may not hold them, their parents or their children."""
    names = set(current_app.config.get("PANEL_HOST_NAMES") or [_own_host_name()])
    for node_name, address in db.session.execute(select(Node.name, Node.address)):
        names.add(node_name)
        try:
            ipaddress.ip_address(address)
        except ValueError:
            names.add(address)
    return {n.lower().rstrip(".") for n in names if n and "." in n.strip(".")}


@cache
def _own_host_name() -> str:
    """This host's fully qualified name, looked up once."""
    return socket.getfqdn()


def owner_token(owner: User) -> str:
    """The value of the TXT record that proves the owner controls a name's DNS (the same for all their names)."""
    key = current_app.config["SECRET_KEY"].encode()
    return "hostfleet-" + hmac.new(key, f"name-proof:{owner.id}:{owner.name}".encode(), hashlib.sha256).hexdigest()[:32]


def challenge_name(name: str) -> str:
    """Where the proof of control for a name is looked up."""
    return f"{CHALLENGE_LABEL}.{name}"


def proven(owner: User, name: str) -> bool:
    """True when the public DNS (NAME_PROOF_RESOLVERS, else this host's resolver) answers the owner's token
    in a TXT record at `_hostfleet-challenge.<name>`, or at its registrable domain's."""
    import dns.exception
    import dns.nameserver
    import dns.resolver

    servers = current_app.config.get("NAME_PROOF_RESOLVERS") or []
    try:
        resolver = dns.resolver.Resolver(configure=not servers)
    except dns.exception.DNSException as exc:
        log.warning("no resolver to check a proof of control of %s: %s", name, exc)
        return False
    if servers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in servers]
    timeout = float(current_app.config.get("NAME_PROOF_TIMEOUT_S", 3))
    # One request's proofs share one name's time (its two lookups): a customer's name server answering
    # each of 64 aliases just inside the timeout would otherwise hold the request for minutes.
    deadline = g.setdefault("name_proof_deadline", time.monotonic() + 2 * timeout)
    found = g.setdefault("name_proofs", set())
    token = owner_token(owner)
    registrable = public_suffixes().privatesuffix(name)
    candidates = list(dict.fromkeys([name, registrable or name]))
    if any((owner.id, candidate) in found for candidate in candidates):
        return True  # this request already saw the proof at the registrable domain
    for candidate in candidates:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            log.warning("no time left in this request to look up the proof of control of %s", name)
            return False
        resolver.lifetime = min(timeout, remaining)
        try:
            answer = resolver.resolve(challenge_name(candidate), "TXT")
        except dns.exception.DNSException:
            continue
        for record in answer:
            if b"".join(record.strings).decode("ascii", "replace").strip() == token:
                found.add((owner.id, candidate))
                return True
    return False


def _covering_zone(name: str, found: list[Holder]) -> Holder | None:
    """The zone that is the name or its nearest parent, among the holders found for it."""
    zones = [h for h in found if h.kind == "domains" and (name == h.name or name.endswith("." + h.name))]
    return max(zones, key=lambda h: len(h.name), default=None)


def _hard_rules(actor_is_admin: bool, name: str) -> None:
    """Public suffixes for everyone; reverse names for customers."""
    if public_suffixes().is_public(name):
        raise NameRefused(400, f"{name} is a public suffix (a name under which anyone registers names, like com "
                               "or co.uk): no one can hold it here; use a name registered under it")
    if not actor_is_admin and any(name == z or name.endswith("." + z) for z in REVERSE_ZONES):
        raise NameRefused(403, f"{name} is a reverse DNS name: only an administrator can create it")


def _reserved_rule(name: str) -> None:
    """The panel's and nodes' own host names, their parents and children."""
    clash = sorted(r for r in reserved_host_names() if related(name, r))
    if clash:
        raise NameRefused(403, f"{name} is, is above or is below the host name {clash[0]} of this panel or one of "
                               "its nodes", overridable=True)


def _owner_rule(owner: User, kind: str, name: str, found: list[Holder], web_domain_id: int | None,
                creating: bool = True, reveal: bool = True) -> None:
    """One owner for a name, the names above it and the names below it; one web domain for a host name.

    When creating, the same name in the same kind is left to the index's unique name (it answers "exists"
    or "is being created"). reveal: the refusal names the other owner and the name they hold (for an
    administrator); without it, it says only that another account holds the name, a name above it
    (named: it is part of the name asked) or a name below it (not named: it may be unpublished)."""
    if creating:
        found = [h for h in found if not (h.kind == kind and h.name == name and kind != "aliases")]
    for holder in found:
        if kind in ("webdomains", "aliases") and holder.kind in ("webdomains", "aliases") and holder.name == name \
                and holder.web_domain_id != web_domain_id:
            whose = holder.describe() if reveal or holder.owner_id == owner.id \
                else f"another account's {LABELS[holder.kind]}"
            raise NameRefused(409, f"{name} is already served by {whose}")
    others = [h for h in found if h.owner_id != owner.id]
    if others:
        holder = min(others, key=lambda h: (h.name != name, len(h.name)))
        under = name.endswith("." + holder.name)
        if reveal:
            relation = "is" if holder.name == name else "is under" if under else "is above"
            refusal = f"{name} {relation} {holder.describe()}"
        elif holder.name == name:
            refusal = f"{name} is held by another account"
        elif under:
            refusal = f"{name} is under {holder.name}, which another account holds"
        else:
            refusal = f"a name under {name} is held by another account"
        raise NameRefused(409, f"{refusal}: a name, the names above it and the names below it belong to one "
                               "owner", overridable=True)


def check(actor: User, owner: User, kind: str, name: str, *, override: bool = False,
          web_domain_id: int | None = None, zone_to_come: bool = False) -> str | None:
    """Refuse (NameRefused) a name the owner may not take now in this kind; when an administrator's override
    sets refusals aside, return what was set aside, to be recorded.

    web_domain_id: the web domain whose aliases are being changed (its own names do not count against it).
    zone_to_come: the request creates the name's zone for the owner first (a web or mail domain with dns).
    """
    _hard_rules(actor.is_admin, name)
    found = holders(name)
    set_aside = []
    for rule in (_reserved_rule, lambda n: _owner_rule(owner, kind, n, found, web_domain_id, reveal=actor.is_admin)):
        try:
            rule(name)
        except NameRefused as exc:
            if not exc.overridable:
                raise
            if not actor.is_admin:
                exc.message += ": only an administrator can create it"
                raise
            if not override:
                exc.message += '; an administrator can set this aside with "override": true'
                raise
            set_aside.append(exc.message)
    if kind in NEEDS_ZONE and not actor.is_admin and not zone_to_come:
        zone = _covering_zone(name, found)
        if (zone is None or zone.owner_id != owner.id) and not proven(owner, name):
            registrable = public_suffixes().privatesuffix(name) or name
            zones = registrable if registrable == name else f"{registrable} (or {name})"
            raise NameRefused(409, f"{name} needs its zone: create the zone {zones} first, or add a TXT record "
                                   f"{challenge_name(name)} with the value {owner_token(owner)} where its DNS is "
                                   "served now, or ask an administrator")
    return "; ".join(set_aside) or None


def recheck(owner: User, kind: str, name: str, web_domain_id: int | None = None, reveal: bool = False) -> None:
    """Refuse (NameRefused, 409) a name the owner has just claimed when another owner's name, parent or
    child is in the index now: `check` and the claim are two steps, and the index's unique name covers
    only the same name in the same kind, so two creates of related names (mallory's shop.example.com,
    alice's example.com) could both pass `check` before either claimed. Run after the claim is
    committed: of two such claims at once, at least the later check sees the other's.

    web_domain_id: the web domain the name is (or is an alias of), so its own names do not count.
    reveal: name the other owner and their name (the actor is an administrator)."""
    found = [h for h in holders(name) if not (h.kind == kind and h.name == name and h.owner_id == owner.id)]
    _owner_rule(owner, kind, name, found, web_domain_id, creating=False, reveal=reveal)


def record_override(actor: User, owner: User, kind: str, name: str, refused: str) -> None:
    """Keep the administrator's decision to set a refusal aside (who, when, what); commits."""
    db.session.add(NameOverride(kind=kind, name=name, owner_id=owner.id, granted_by=actor.name,
                                granted_at=utcnow(), refused=refused))
    db.session.commit()
    log.warning("%s let %s hold %s %s against the name registry: %s", actor.name, owner.name, LABELS[kind], name,
                refused)


def why_not(owner: User, kind: str, name: str) -> str | None:
    """Why the owner may not hold this name of this kind (None: they may): a public suffix; for a customer
    a reverse name or a host name of the panel or its nodes; any other owner's name, parent or child in
    any kind. An administrator's recorded override for this owner, kind and name allows it. The covering
    zone and the proof of control are not asked: they are checked when a name is created.

    kind: "domains", "webdomains", "aliases", "maildomains" (or "mailboxes": their mail domain's rules).
    Meant for a name the index is about to add, or to give another owner. A name below this one that an
    administrator let another owner hold (a recorded override) does not count against it; two rows that
    break the rules without one (made before the registry) each answer False for the other's sake.
    """
    if kind == "mailboxes":
        kind, name = "maildomains", name.rpartition("@")[2]
    name = name.lower().rstrip(".")
    try:
        _hard_rules(owner.is_admin, name)
    except NameRefused as exc:
        return exc.message
    overridden = db.session.scalar(select(NameOverride.id).where(
        NameOverride.owner_id == owner.id, NameOverride.kind == kind, NameOverride.name == name).limit(1))
    if overridden is not None:
        return None
    try:
        if not owner.is_admin:
            _reserved_rule(name)
        others = [h for h in holders(name) if h.owner_id != owner.id]
        allowed = set(db.session.execute(select(NameOverride.owner_id, NameOverride.kind, NameOverride.name).where(
            NameOverride.name.in_({h.name for h in others})))) if others else set()
        others = [h for h in others if not (h.name.endswith("." + name) and (h.owner_id, h.kind, h.name) in allowed)]
        _owner_rule(owner, kind, name, others, None, creating=False)
    except NameRefused as exc:
        return exc.message
    return None


def may_hold(owner: User, kind: str, name: str) -> bool:
    """True when the registry lets this owner hold this name of this kind (why_not says why not)."""
    return why_not(owner, kind, name) is None


def set_aliases(web_domain_id: int, aliases: list[str]) -> None:
    """Make the indexed aliases of a web domain these (in the session; the caller commits)."""
    table = WebDomainAlias.__table__
    db.session.execute(table.delete().where(table.c.webdomain_id == web_domain_id))
    if aliases:
        db.session.execute(table.insert(), [{"webdomain_id": web_domain_id, "name": a} for a in aliases])


def aliases_of(web_domain_id: int) -> list[str]:
    """The indexed aliases of a web domain."""
    return sorted(db.session.scalars(select(WebDomainAlias.name).where(WebDomainAlias.webdomain_id == web_domain_id)))


def dependents(zone: str) -> list[Holder]:
    """The web domains, their aliases and the mail domains whose names the zone serves: its own name and
    the names under it, less those a deeper zone serves."""
    found = holders(zone)
    deeper = [h.name for h in found if h.kind == "domains" and h.name.endswith("." + zone)]
    return [h for h in found if h.kind != "domains" and (h.name == zone or h.name.endswith("." + zone))
            and not any(h.name == d or h.name.endswith("." + d) for d in deeper)]
