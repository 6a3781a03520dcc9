"""Domains → Web domains: the list from the index, details and changes from the node holding them."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user, login_required

from app.blueprints import userdata_pages
from app.blueprints.userdata_pages import dns_note, listing
from app.blueprints.webdomains.forms import WebDomainEditForm, WebDomainForm
from app.display import unicode_name
from app.errors import refused, show_errors
from app.htmx import render
from app.services import certificates, userdata
from app.services.errors import ServiceError

bp = Blueprint("webdomains", __name__, url_prefix="/domains")


@bp.route("/web", methods=["GET", "POST"])
@login_required
def index():
    """The caller's web domains (index only) and the form to add one."""
    form = WebDomainForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("webdomains", current_user, form.payload(current_user.is_admin))
            flash(f"Web domain {created['name']} is live on {created['node']}.{dns_note(created)}")
            return redirect(url_for("webdomains.index"))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("webdomains/webdomains.html", "webdomains/_webdomains.html", form=form,
                  **listing("webdomains")), status


@bp.route("/web/<int:item_id>", methods=["GET", "POST"])
@login_required
def show(item_id: int):
    """One web domain as its node holds it; the form changes aliases, PHP and document root."""
    try:
        domain = userdata.show("webdomains", current_user, item_id)
    except ServiceError as exc:
        return refused(exc, back=url_for("webdomains.index"))
    form = WebDomainEditForm(data={"aliases": " ".join(map(unicode_name, domain.get("aliases", []))),
                                   "php": domain.get("php"), "docroot": domain.get("docroot")})
    if form.validate_on_submit():
        try:
            userdata.update("webdomains", current_user, item_id, form.payload())
            flash(f"Web domain {domain['name']} saved.")
            return redirect(url_for("webdomains.show", item_id=item_id))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("webdomains/webdomain.html", "webdomains/_webdomain.html", domain=domain, form=form,
                  certificate=certificates.show(current_user, item_id)), status


@bp.route("/web/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id: int):
    """Remove a web domain from its node, then from the index."""
    return userdata_pages.delete("webdomains", item_id, "Web domain deleted.", url_for("webdomains.index"))


@bp.route("/web/delete-selected", methods=["POST"])
@login_required
def bulk_delete():
    """Delete the ticked web domains: ask first naming them, then delete each and say what happened to each."""
    return userdata_pages.bulk_delete("webdomains", "web domain", "web domains", url_for("webdomains.index"))
