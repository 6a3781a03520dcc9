"""Mail → Mail domains: the list from the index, changes on the node holding the owner's mail role."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user, login_required

from app.blueprints import userdata_pages
from app.blueprints.maildomains.forms import MailDomainForm
from app.blueprints.userdata_pages import dns_note, listing
from app.errors import show_errors
from app.htmx import render
from app.services import userdata
from app.services.errors import ServiceError

bp = Blueprint("maildomains", __name__, url_prefix="/mail")


@bp.route("/domains", methods=["GET", "POST"])
@login_required
def index():
    """The caller's mail domains and the form to add one."""
    form = MailDomainForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("maildomains", current_user, form.payload(current_user.is_admin))
            flash(f"Mail domain {created['name']} receives mail on {created['node']}.{dns_note(created)}")
            return redirect(url_for("maildomains.index"))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("maildomains/domains.html", "maildomains/_domains.html", form=form,
                  **listing("maildomains")), status


@bp.route("/domains/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id: int):
    """Remove a mail domain (refused by the node while it has mailboxes)."""
    return userdata_pages.delete("maildomains", item_id, "Mail domain deleted.", url_for("maildomains.index"))


@bp.route("/domains/delete-selected", methods=["POST"])
@login_required
def bulk_delete():
    """Delete the ticked mail domains: ask first naming them, then delete each and say what happened to each."""
    return userdata_pages.bulk_delete("maildomains", "mail domain", "mail domains", url_for("maildomains.index"))
