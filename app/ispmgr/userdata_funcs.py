"""The ISPmanager funcs for a user's data (web domains and their ISPmanager 6 name `site`, domain names,
mail domains, mailboxes), each onto app/services/userdata.py: the same owner, name, limit and quota rules
as /api/v1. Any account may call them; a user sees and changes only their own, an administrator names the
owner (or acts as the user with su=)."""

from __future__ import annotations

from dataclasses import dataclass

from agent import validation as v
from app.extensions import db
from app.ispmgr.doc import Element, IspError, new_doc
from app.ispmgr.funcs import Call, elids, password_from, whole_number
from app.services import userdata
from app.services.userdata import KINDS, UserDataError
from app.services.userdata.checks import ASK_FOR_MORE


@dataclass(frozen=True)
class Family:
    """One ISPmanager list and its service kind; `params` maps ISPmanager parameters to service fields."""

    kind: str
    name_param: str
    params: dict[str, str]


FAMILIES = {
    "webdomain": Family("webdomains", "name", {"name": "name", "aliases": "aliases", "owner": "owner"}),
    "site": Family("webdomains", "site_name", {"site_name": "name", "site_aliases": "aliases", "owner": "owner"}),
    "domain": Family("domains", "name", {"name": "name", "ip": "ip", "owner": "owner"}),
    "emaildomain": Family("maildomains", "name", {"name": "name", "owner": "owner"}),
    "email": Family("mailboxes", "name", {"name": "address", "passwd": "password", "maxsize": "quota_mb",
                                          "forward": "forward"}),
}


def refused(exc: UserDataError, family: Family) -> IspError:
    """A service refusal, its object the ISPmanager parameter at fault."""
    field = next(iter(exc.fields), "")
    param = {service: isp for isp, service in family.params.items()}.get(field, field or "elid")
    if exc.status == 409 and any(ASK_FOR_MORE in m or "quota" in m for m in exc.fields.values()):
        return IspError("limit", param, exc.message)
    if exc.status == 409 and ("exists" in exc.message or "taken" in exc.message or "held" in exc.message):
        return IspError("exists", param, exc.message)
    if exc.status in (400, 404, 409):
        return IspError("value", param, exc.message)
    return IspError("sys", param, exc.message)


def visible_row(family: Family, call: Call, key: str):
    """The index row the actor may see with this name (address); value(elid) otherwise."""
    kind = KINDS[family.kind]
    row = None if "\x00" in key else db.session.scalar(
        userdata.visible(kind, call.actor).where(getattr(kind.model, kind.key) == key))
    if row is None:
        raise IspError("value", "elid", f"No {kind.label} {key[:64]}", key[:64])
    return row


def listed_rows(family: Family, call: Call) -> list:
    """Every row the actor may see, by name."""
    rows, page = [], 1
    while True:
        chunk, total = userdata.list_index(family.kind, call.actor, page=page, per_page=1000)
        rows += chunk
        if not chunk or len(rows) >= total:
            return rows
        page += 1


def listing(family: Family, call: Call) -> Element:
    """elem per record: name, owner, and for mailboxes the mail domain."""
    doc = new_doc(call.func)
    for row in listed_rows(family, call):
        elem = doc.add("elem")
        key = userdata.key_of(row)
        elem.add("name", key)
        elem.add("owner", row.owner.name)
        if family.kind == "mailboxes":
            elem.add("domainname", key.rpartition("@")[2])
        elem.add("active", "on" if row.claimed_at is None else "off")
    return doc


def _split_list(value: str) -> list[str]:
    """ISPmanager's space- or comma-separated list."""
    return [item for item in value.replace(",", " ").split() if item]


def _body(family: Family, call: Call, creating: bool) -> dict:
    """The service's body from the ISPmanager parameters given."""
    body: dict = {}
    for param, field in family.params.items():
        value = call.get(param)
        if value is None or (field == "owner" and value == ""):
            continue
        if field == "aliases":
            body[field] = _split_list(value)
        elif field == "quota_mb":
            if not whole_number(value.strip()):
                raise IspError("value", param, f"{param} must be a whole number of MiB", value[:64])
            body[field] = int(value.strip())
        elif field == "forward":
            body[field] = _split_list(value)
        else:
            body[field] = value
    if family.kind == "webdomains" and call.get("php" if family.name_param == "name" else "site_php") is not None:
        body["php"] = call.get("php" if family.name_param == "name" else "site_php") == "on"
    if family.kind == "mailboxes":
        password = password_from(call)
        if password is not None:
            body["password"] = password
        if creating:
            for param, check in (("name", v.local_part), ("domainname", v.domain_name)):
                try:
                    check(call.get(param) or "", param)
                except v.ValidationError as exc:
                    raise IspError("value", param, f"{param}: {exc.message}", (call.get(param) or "")[:64]) from None
            body["address"] = f"{call.get('name') or ''}@{call.get('domainname') or ''}"
        else:
            body.pop("address", None)
    return body


def edit(family: Family, call: Call) -> Element:
    """View (elid), create (sok) or change (sok and elid: web domains and mailboxes)."""
    row = visible_row(family, call, call.get("elid")) if call.get("elid") else None
    doc = new_doc(call.func)
    try:
        if not call.saving:
            shown = userdata.show(family.kind, call.actor, row.id) if row else {}
            for param, field in family.params.items():
                value = shown.get(field, "")
                doc.add(param, " ".join(value) if isinstance(value, list) else ("" if value is None else value))
            if family.kind == "mailboxes":
                doc.add("passwd", "")
            return doc
        if row is None:
            made = userdata.create(family.kind, call.actor, _body(family, call, creating=True))
            key = made.get(KINDS[family.kind].key, "")
        else:
            if family.kind not in userdata.UPDATE_FIELDS:
                raise IspError("value", "elid", f"a {KINDS[family.kind].label} cannot be changed; delete and "
                                                "create it again", userdata.key_of(row))
            body = {k: val for k, val in _body(family, call, creating=False).items()
                    if k in userdata.UPDATE_FIELDS[family.kind]}
            userdata.update(family.kind, call.actor, row.id, body)
            key = userdata.key_of(row)
    except UserDataError as exc:
        raise refused(exc, family) from None
    doc.add("ok")
    doc.add("id", key)
    return doc


def delete(family: Family, call: Call) -> Element:
    """Delete the records named by elid; every key is checked first."""
    rows = [visible_row(family, call, key) for key in elids(call)]
    try:
        for row in rows:
            userdata.delete(family.kind, call.actor, row.id)
    except UserDataError as exc:
        raise refused(exc, family) from None
    doc = new_doc(call.func)
    doc.add("ok")
    return doc


# ---------------------------------------------------------------- DNS records of a zone (plid = the zone)

RECORD = Family("domains", "name", {"name": "name", "rtype": "type", "value": "value", "ttl": "ttl",
                                    "prio": "priority", "plid": "zone"})


def _zone(call: Call):
    """The zone named by plid."""
    if not call.get("plid"):
        raise IspError("value", "plid", "plid is required: the domain name whose records these are")
    try:
        return visible_row(RECORD, call, call.get("plid"))
    except IspError as exc:
        raise IspError("value", "plid", exc.message, exc.value) from None


def _record_id(call: Call, key: str) -> int:
    """A record's key: the id Hostfleet gives it (the records list shows it as rkey)."""
    if not whole_number(key):
        raise IspError("value", "elid", "elid must be a record's rkey from the domain.record list", key[:64])
    return int(key)


def _record_body(call: Call) -> dict:
    """name, rtype, value (or ISPmanager's ip / domain), ttl, prio."""
    body: dict = {}
    for param, field in (("name", "name"), ("rtype", "type")):
        if call.get(param) is not None:
            body[field] = call.get(param).upper() if field == "type" else call.get(param)
    value = next((call.get(p) for p in ("value", "ip", "domain") if call.get(p)), None)
    if value is not None:
        body["value"] = value
    for param, field in (("ttl", "ttl"), ("prio", "priority")):
        raw = call.get(param)
        if raw:
            if not whole_number(raw):
                raise IspError("value", param, f"{param} must be a whole number", raw[:64])
            body[field] = int(raw)
    return body


def record_list(call: Call) -> Element:
    """The records of the zone plid."""
    zone = _zone(call)
    doc = new_doc(call.func)
    try:
        records = userdata.list_records(call.actor, zone.id)
    except UserDataError as exc:
        raise refused(exc, RECORD) from None
    for record in records:
        elem = doc.add("elem")
        elem.add("rkey", record["id"])
        elem.add("name", record["name"])
        elem.add("rtype", record["type"].lower())
        elem.add("value", record["value"])
        elem.add("ttl", record["ttl"])
        if record.get("priority") is not None:
            elem.add("prio", record["priority"])
    return doc


def record_edit(call: Call) -> Element:
    """Add a record (sok) or replace one (sok and elid) in the zone plid."""
    zone = _zone(call)
    if not call.saving:
        raise IspError("value", "sok", "domain.record.edit shows no form here: send sok=ok to save")
    try:
        if call.get("elid"):
            made = userdata.update_record(call.actor, zone.id, _record_id(call, call.get("elid")), _record_body(call))
        else:
            made = userdata.add_record(call.actor, zone.id, _record_body(call))
    except UserDataError as exc:
        raise refused(exc, RECORD) from None
    doc = new_doc(call.func)
    doc.add("ok")
    doc.add("id", made["id"])
    return doc


def record_delete(call: Call) -> Element:
    """Delete the records named by elid (their rkeys) from the zone plid."""
    zone = _zone(call)
    ids = [_record_id(call, key) for key in elids(call)]
    try:
        for record_id in ids:
            userdata.delete_record(call.actor, zone.id, record_id)
    except UserDataError as exc:
        raise refused(exc, RECORD) from None
    doc = new_doc(call.func)
    doc.add("ok")
    return doc


def handlers() -> dict:
    """func → (handler, administrators only) for every family's list, edit and delete."""
    table = {}
    for prefix, family in FAMILIES.items():
        table[prefix] = (lambda call, f=family: listing(f, call), False)
        table[f"{prefix}.edit"] = (lambda call, f=family: edit(f, call), False)
        table[f"{prefix}.delete"] = (lambda call, f=family: delete(f, call), False)
    table.update({"domain.record": (record_list, False), "domain.record.edit": (record_edit, False),
                  "domain.record.delete": (record_delete, False)})
    return table
