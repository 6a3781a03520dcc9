"""The checks a new record passes before its node is asked: its owner, their limits and disk quota, and
the name registry's rules for its name and aliases (docs/user-data.md, "Names: one registry across kinds")."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from agent import validation as v
from app.extensions import db
from app.models import DomainIndex, Node, User, WebDomainIndex
from app.services import names
from app.services.userdata.errors import UserDataError, invalid, validated
from app.services.userdata.index import check_new_name, release_claim
from app.services.userdata.kinds import KINDS, Kind
from app.services.userdata.owners import MIB, disk_used, limit_of

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


def count_of(owner: User, kind_name: str) -> int:
    """How many of a kind the owner holds against its limit (creates in flight included)."""
    kind = KINDS[kind_name]
    return db.session.scalar(select(func.count()).select_from(kind.model).where(kind.model.owner_id == owner.id))


def check_limit(owner: User, kind_name: str, name: str | None = None, claimed: bool = False) -> None:
    """Refuse when the owner already has as many of this kind as their limit allows; a name that exists
    already is refused as the duplicate it is, not as over the limit. With claimed, the new row is already
    claimed (committed) and counts too: run again after the claim, so that two creates at once, each
    counting before the other claimed, cannot both pass (at worst both are refused)."""
    limit = limit_of(owner, kind_name)
    if limit is None:
        return
    kind = KINDS[kind_name]
    count = count_of(owner, kind_name)
    if claimed:
        count -= 1
    if count >= limit:
        if name is not None and not claimed:
            check_new_name(kind_name, name)
        step = f"delete one or {ASK_FOR_MORE}" if limit else ASK_FOR_MORE
        used = f", and {count} {'is' if count == 1 else 'are'} in use" if count else ""
        raise UserDataError(409, f"{owner.name}'s plan allows {limit_words(limit, kind)}{used}: {step}. "
                                 "Nothing was created.",
                            {kind.key: f"your plan allows {limit_words(limit, kind)}; {step}"})


# A customer's way past a limit; the ISPmanager API tells a limit from other refusals by it.
ASK_FOR_MORE = "ask your provider for a larger plan"


def limit_words(limit: int, kind: Kind) -> str:
    """A limit with its noun: "1 mailbox", "2 mailboxes", "no mailboxes"."""
    return f"no {kind.plural}" if limit == 0 else f"{limit} {kind.label if limit == 1 else kind.plural}"


def check_disk_quota(owner: User, field: str) -> None:
    """Refuse new sites and mail when the owner's files already fill their disk quota (limits.disk_mb).

    A panel-level quota: it stops new data being added through the panel; it does not stop files being
    written (that takes filesystem quotas on the nodes)."""
    limit = limit_of(owner, "disk_mb")
    if limit is None:
        return
    used = disk_used(owner)
    if used is not None and used >= limit * MIB:
        raise UserDataError(409, f"{owner.name}'s files take {used / MIB:.1f} MB of their {limit} MB disk quota; "
                                 "nothing was created. Free some space or ask for a larger quota.",
                            {field: f"disk quota of {limit} MB used up"})


def override_asked(actor: User, data: dict) -> bool:
    """The request's `override` (an administrator setting the name registry's refusals aside); refused
    for everyone else."""
    override = validated(v.boolean, data.pop("override", False), "override")
    if override and not actor.is_admin:
        raise UserDataError(403, "invalid override: only an administrator can override the name rules",
                            {"override": "only an administrator can override the name rules"})
    return override


def owner_zone_covers(owner: User, name: str) -> bool:
    """True when one of the owner's confirmed zones is the name or a parent of it."""
    return db.session.scalar(select(DomainIndex.id).where(
        DomainIndex.owner_id == owner.id, DomainIndex.claimed_at.is_(None),
        DomainIndex.name.in_(names.lineage(name))).limit(1)) is not None


def check_names(actor: User, owner: User, kind_name: str, body: dict, override: bool,
                web_domain_id: int | None = None, zone_first: bool = False) -> list[tuple[str, str, str]]:
    """The name registry's rules for a new record's name and aliases (or a web domain's new aliases):
    refused as a UserDataError naming the field; what an administrator's override set aside, as
    (kind, name, refusal) to be recorded once the change is made."""
    if kind_name in ("mailboxes", "databases", "dbusers"):
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
    if kind_name in ("mailboxes", "databases", "dbusers"):
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


def index_aliases(row: WebDomainIndex, aliases: list[str]) -> None:
    """Index a web domain's aliases (committed with the change's pending mark); 409 naming the field when
    another web domain took one meanwhile."""
    try:
        names.set_aliases(row.id, aliases)
    except IntegrityError:
        db.session.rollback()
        raise UserDataError(409, f"an alias of {', '.join(aliases)} was just taken by another web domain; nothing "
                                 "was changed", {"aliases": "taken by another web domain"}) from None
