"""Domains → Web domains and Domain names: lists from the index, details and changes from the node."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.domains.forms import RecordForm, WebDomainEditForm, WebDomainForm, ZoneForm, show_errors
from app.htmx import render
from app.services import userdata
from app.services.userdata import UserDataError

bp = Blueprint("domains", __name__, url_prefix="/domains")
PER_PAGE = 100


@bp.errorhandler(UserDataError)
def refused(exc: UserDataError):
    """Any refusal a view did not show in a form: the error page with its status, never a 500."""
    return render_template("errors/error.html", code=exc.status, message=exc.message), exc.status


# The API's highest ?page= too: beyond it the offset would overflow the database's integers (a 500).
MAX_PAGE = 1_000_000


def page_number() -> int:
    """The ?page= of a list (1 when absent or not a number; at most MAX_PAGE)."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


def listing(kind: str) -> dict:
    """One page of the caller's index rows of kind, for a list template."""
    page = page_number()
    rows, total = userdata.list_index(kind, current_user, page, PER_PAGE)
    return {"rows": rows, "total": total, "page_no": page, "pages": max((total + PER_PAGE - 1) // PER_PAGE, 1)}


def dns_note(created: dict) -> str:
    """What the DNS part of a create did, for the flash message."""
    dns = created.get("dns")
    if not dns:
        return ""
    if "error" in dns or "skipped" in dns:
        return f" DNS records were not made: {dns.get('error') or dns.get('skipped')}"
    where = f"new zone {dns['zone']}" if dns["created_zone"] else f"zone {dns['zone']}"
    return f" DNS: {dns['records']} records in {where}."


def failed(exc: UserDataError) -> None:
    """A refusal with no form to show it under (a delete): flash it, or 404 for data the caller cannot see."""
    if exc.status == 404:
        abort(404, exc.message)
    flash(exc.message)


@bp.route("/web", methods=["GET", "POST"])
@login_required
def webdomains():
    """The caller's web domains (index only) and the form to add one."""
    form = WebDomainForm()
    status = 200
    if form.validate_on_submit():
        try:
            created = userdata.create("webdomains", current_user, form.payload(current_user.is_admin))
            flash(f"Web domain {created['name']} is live on {created['node']}.{dns_note(created)}")
            return redirect(url_for("domains.webdomains"))
        except UserDataError as exc:
            show_errors(form, exc)
    if form.errors or form.form_errors:
        status = 400
    return render("domains/webdomains.html", "domains/_webdomains.html", form=form, **listing("webdomains")), status


@bp.route("/web/<int:item_id>", methods=["GET", "POST"])
@login_required
def webdomain(item_id: int):
    """One web domain as its node holds it; the form changes aliases, PHP and document root."""
    try:
        domain = userdata.show("webdomains", current_user, item_id)
    except UserDataError as exc:
        return _unavailable(exc, "domains.webdomains")
    form = WebDomainEditForm(data={"aliases": " ".join(domain.get("aliases", [])), "php": domain.get("php"),
                                   "docroot": domain.get("docroot")})
    status = 200
    if form.validate_on_submit():
        try:
            userdata.update("webdomains", current_user, item_id, form.payload())
            flash(f"Web domain {domain['name']} saved.")
            return redirect(url_for("domains.webdomain", item_id=item_id))
        except UserDataError as exc:
            show_errors(form, exc)
    if form.errors or form.form_errors:
        status = 400
    return render("domains/webdomain.html", "domains/_webdomain.html", domain=domain, form=form), status


@bp.route("/web/<int:item_id>/delete", methods=["POST"])
@login_required
def delete_webdomain(item_id: int):
    """Remove a web domain from its node, then from the index."""
    try:
        userdata.delete("webdomains", current_user, item_id)
        flash("Web domain deleted.")
    except UserDataError as exc:
        failed(exc)
    return redirect(url_for("domains.webdomains"))


@bp.route("/names", methods=["GET", "POST"])
@login_required
def zones():
    """The caller's domain names (index only) and the form to add one."""
    form = ZoneForm()
    status = 200
    if form.validate_on_submit():
        try:
            created = userdata.create("domains", current_user, form.payload(current_user.is_admin))
            flash(f"Domain name {created['name']} is served by {created['node']}.")
            return redirect(url_for("domains.zone", item_id=created["id"]))
        except UserDataError as exc:
            show_errors(form, exc)
    if form.errors or form.form_errors:
        status = 400
    return render("domains/zones.html", "domains/_zones.html", form=form, **listing("domains")), status


@bp.route("/names/<int:item_id>", methods=["GET", "POST"])
@login_required
def zone(item_id: int):
    """A zone with its records as its node holds them; the form adds a record."""
    try:
        domain = userdata.show("domains", current_user, item_id)
    except UserDataError as exc:
        return _unavailable(exc, "domains.zones")
    form = RecordForm()
    status = 200
    if form.validate_on_submit():
        try:
            userdata.add_record(current_user, item_id, form.payload())
            flash("Record added; the zone's serial went up.")
            return redirect(url_for("domains.zone", item_id=item_id))
        except UserDataError as exc:
            show_errors(form, exc)
    if form.errors or form.form_errors:
        status = 400
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
            return redirect(url_for("domains.zone", item_id=item_id))
        except UserDataError as exc:
            if exc.status == 404:
                abort(404, exc.message)
            show_errors(form, exc)
    domain = userdata.show("domains", current_user, item_id)
    return render("domains/zone.html", "domains/_zone.html", domain=domain, form=form, editing=record_id), 400


@bp.route("/names/<int:item_id>/records/<int:record_id>/delete", methods=["POST"])
@login_required
def delete_record(item_id: int, record_id: int):
    """Remove one record."""
    try:
        userdata.delete_record(current_user, item_id, record_id)
        flash("Record deleted.")
    except UserDataError as exc:
        failed(exc)
    return redirect(url_for("domains.zone", item_id=item_id))


@bp.route("/names/<int:item_id>/delete", methods=["POST"])
@login_required
def delete_zone(item_id: int):
    """Remove a zone from its node, then from the index."""
    try:
        userdata.delete("domains", current_user, item_id)
        flash("Domain name deleted.")
    except UserDataError as exc:
        failed(exc)
    return redirect(url_for("domains.zones"))


def _unavailable(exc: UserDataError, back: str):
    """A detail page whose data cannot be read: 404 when not the caller's, else the node's error."""
    if exc.status == 404:
        abort(404, exc.message)
    flash(exc.message)
    return redirect(url_for(back)), 303

