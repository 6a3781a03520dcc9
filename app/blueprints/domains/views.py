"""Domains → Domain names: the list from the index, zones and their records from the node holding them."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user, login_required

from app.blueprints import userdata_pages
from app.blueprints.domains.forms import RecordForm, ZoneForm
from app.blueprints.userdata_pages import listing
from app.display import unicode_name
from app.errors import refused, show_errors
from app.htmx import render
from app.services import names, userdata
from app.services.errors import ServiceError

bp = Blueprint("domains", __name__, url_prefix="/domains")


def zone_dependents_note(zone: str) -> str:
    """What stops being found by name when a zone is deleted, for its delete question ("" when nothing)."""
    groups: dict[str, list[str]] = {}
    for holder in names.dependents(zone):
        groups.setdefault(names.LABELS[holder.kind], []).append(unicode_name(holder.name))
    if not groups:
        return ""
    parts = []
    for label, found in sorted(groups.items()):
        found.sort()
        parts.append(f"the {label}{'s' if len(found) != 1 else ''} {', '.join(found)}")
    return f" It serves {' and '.join(parts)}: they will no longer be found by name."


def zone_listing() -> dict:
    """One page of the caller's zones, each with what its delete question says goes with it."""
    page = listing("domains")
    page["row_notes"] = {row.id: zone_dependents_note(row.name) for row in page["rows"] if not row.claimed_at}
    return page


@bp.route("/names", methods=["GET", "POST"])
@login_required
def index():
    """The caller's domain names (index only) and the form to add one."""
    form = ZoneForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("domains", current_user, form.payload(current_user.is_admin))
            flash(f"Domain name {created['name']} is served by {created['node']}.")
            return redirect(url_for("domains.show", item_id=created["id"]))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("domains/zones.html", "domains/_zones.html", form=form, **zone_listing()), status


@bp.route("/names/<int:item_id>", methods=["GET", "POST"])
@login_required
def show(item_id: int):
    """A zone with its records as its node holds them; the form adds a record."""
    try:
        domain = userdata.show("domains", current_user, item_id)
    except ServiceError as exc:
        return refused(exc, back=url_for("domains.index"))
    form = RecordForm()
    if form.validate_on_submit():
        try:
            userdata.add_record(current_user, item_id, form.payload())
            flash("Record added; the zone's serial went up.")
            return redirect(url_for("domains.show", item_id=item_id))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("domains/zone.html", "domains/_zone.html", domain=domain, form=form), status


@bp.route("/names/<int:item_id>/records/<int:record_id>", methods=["POST"])
@login_required
def edit_record(item_id: int, record_id: int):
    """Change one record; a refusal shows the zone page again with the error under the field."""
    userdata.get_row("domains", current_user, item_id)
    form = RecordForm()
    if form.validate_on_submit():
        try:
            userdata.update_record(current_user, item_id, record_id, form.payload())
            flash("Record saved; the zone's serial went up.")
            return redirect(url_for("domains.show", item_id=item_id))
        except ServiceError as exc:
            if exc.status == 404:
                raise
            show_errors(form, exc)
    domain = userdata.show("domains", current_user, item_id)
    return render("domains/zone.html", "domains/_zone.html", domain=domain, form=form, editing=record_id), 400


@bp.route("/names/<int:item_id>/records/<int:record_id>/delete", methods=["POST"])
@login_required
def delete_record(item_id: int, record_id: int):
    """Remove one record."""
    try:
        userdata.delete_record(current_user, item_id, record_id)
    except ServiceError as exc:
        return refused(exc, back=url_for("domains.show", item_id=item_id))
    flash("Record deleted.")
    return redirect(url_for("domains.show", item_id=item_id))


@bp.route("/names/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id: int):
    """Remove a zone from its node, then from the index."""
    return userdata_pages.delete("domains", item_id, "Domain name deleted.", url_for("domains.index"))


@bp.route("/names/delete-selected", methods=["POST"])
@login_required
def bulk_delete():
    """Delete the ticked domain names: ask first naming them, then delete each and say what happened to each."""
    return userdata_pages.bulk_delete("domains", "domain name", "domain names", url_for("domains.index"))
