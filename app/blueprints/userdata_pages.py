"""What the user-data menus (Web domains, Domain names, Mail domains, Mailboxes) share: the list from the
index (searched, filtered by owner and node, sorted, paged: app/listing.py), the owner fields of a create
form, the note on a create's DNS records, and deleting one row or several."""

from __future__ import annotations

from flask import flash, redirect, render_template, request
from flask_login import current_user
from sqlalchemy import func
from sqlalchemy.orm import aliased
from wtforms import BooleanField, StringField

from app.display import counted, unicode_name
from app.errors import refused
from app.extensions import db
from app.listing import Column, ListState, page_of_select
from app.models import Node, User
from app.services import userdata
from app.services.errors import ServiceError

# At most this many rows are deleted by one bulk request (one request to a node per row).
MAX_BULK = 200


def words(text: str | None) -> list[str]:
    """A list typed as "a.com, b.com" or one per line."""
    return [w for w in (text or "").replace(",", " ").split() if w]


class OwnerMixin:
    """Administrators name the owner; users always create for themselves (the field is ignored)."""

    owner = StringField("Owner (user name)")
    override = BooleanField("Override the name rules (another owner's name, a host name of the panel; recorded)")

    def owner_fields(self, data: dict, admin: bool) -> dict:
        """The owner and the override, which only administrators send."""
        if admin:
            data["owner"] = self.owner.data or ""
            if self.override.data:
                data["override"] = True
        return data


def listing(kind: str) -> dict:
    """One page of the caller's index rows of kind as the query string asks (?q= searches the name, and
    for administrators the owner; ?owner= and ?node= filter by name; ?sort=name|owner|node), for a list
    template: `page` (an app.listing.Page) and its `rows`."""
    spec = userdata.KINDS[kind]
    model = spec.model
    key = getattr(model, spec.key)
    owner, node = aliased(User), aliased(Node)
    columns = [Column("name", "Name", key), Column("node", "Node", node.name)]
    filters = ("node",)
    if current_user.is_admin:
        columns.append(Column("owner", "Owner", owner.name))
        filters = ("owner", "node")
    state = ListState.from_request(columns, "name", filters=filters)
    query = userdata.visible(spec, current_user, claims=True)
    search = [key]
    # Owner and node are joined (by name) only when the search, a filter or the order needs them.
    if current_user.is_admin and (state.q or state.sort == "owner" or "owner" in state.filters):
        query = query.join(owner, model.owner_id == owner.id)
        search.append(owner.name)
        if "owner" in state.filters:
            query = query.where(func.lower(owner.name) == state.filters["owner"].lower())
    if state.sort == "node" or "node" in state.filters:
        query = query.join(node, model.node_id == node.id)
        if "node" in state.filters:
            query = query.where(func.lower(node.name) == state.filters["node"].lower())
    page = page_of_select(query, state, columns, model.id, search=search)
    return {"listing": page, "rows": page.rows}


def dns_note(created: dict) -> str:
    """What the DNS part of a create did, for the flash message."""
    dns = created.get("dns")
    if not dns:
        return ""
    if "error" in dns or "skipped" in dns:
        return f" DNS records were not made: {dns.get('error') or dns.get('skipped')}"
    where = f"new zone {dns['zone']}" if dns["created_zone"] else f"zone {dns['zone']}"
    return f" DNS: {counted(dns['records'], 'record')} in {where}."


def delete(kind: str, item_id: int, done: str, back: str):
    """Remove one of the caller's items of kind from its node, then from the index; flash `done` and go
    to `back` (a refusal is flashed there too, or a 404 for an item that is not the caller's)."""
    try:
        userdata.delete(kind, current_user, item_id)
    except ServiceError as exc:
        return refused(exc, back=back)
    flash(done)
    return redirect(back)


def bulk_delete(kind: str, noun: str, plural: str, back: str):
    """Delete the ticked rows of a list: the first POST (step=ask) names how many and which and asks;
    the confirmed one (step=delete) deletes each row through the same service as a single delete and
    reports what happened to each (a refusal of one row does not stop the others)."""
    ids = []
    for value in request.form.getlist("ids"):
        if value.isdigit() and int(value) not in ids:
            ids.append(int(value))
    if not ids:
        flash(f"Select the {plural} to delete first: tick the box in their rows.")
        return redirect(back)
    if len(ids) > MAX_BULK:
        flash(f"At most {MAX_BULK} {plural} can be deleted at once; {len(ids)} were selected.")
        return redirect(back)
    spec = userdata.KINDS[kind]
    model = spec.model
    found = {row.id: row for row in db.session.scalars(
        userdata.visible(spec, current_user, claims=True).where(model.id.in_(ids))).unique()}
    named = [(i, unicode_name(userdata.key_of(found[i])) if i in found else f"#{i}") for i in ids]
    if request.form.get("step") != "delete":
        return render_template("listing/bulk_confirm.html", noun=noun, plural=plural, rows=named,
                               back=back, action=request.path)
    outcomes = []
    for item_id, name in named:
        try:
            userdata.delete(kind, current_user, item_id)
            outcomes.append({"id": item_id, "name": name, "deleted": True, "message": "deleted"})
        except ServiceError as exc:
            outcomes.append({"id": item_id, "name": name, "deleted": False, "message": exc.message})
    done = sum(o["deleted"] for o in outcomes)
    return render_template("listing/bulk_done.html", noun=noun, plural=plural, outcomes=outcomes, done=done,
                           back=back)
