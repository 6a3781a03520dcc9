"""Mail → Mailboxes: the list from the index, details and changes on the node holding them."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user, login_required

from app.blueprints import userdata_pages
from app.blueprints.mailboxes.forms import MailboxEditForm, MailboxForm
from app.blueprints.userdata_pages import listing
from app.display import unicode_name
from app.errors import show_errors
from app.htmx import render
from app.services import userdata
from app.services.errors import ServiceError

bp = Blueprint("mailboxes", __name__, url_prefix="/mail")


@bp.route("/mailboxes", methods=["GET", "POST"])
@login_required
def index():
    """The caller's mailboxes and the form to add one."""
    form = MailboxForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("mailboxes", current_user, form.payload())
            flash(f"Mailbox {created['address']} created.")
            return redirect(url_for("mailboxes.index"))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("mailboxes/mailboxes.html", "mailboxes/_mailboxes.html", form=form,
                  **listing("mailboxes")), status


@bp.route("/mailboxes/<int:item_id>", methods=["GET", "POST"])
@login_required
def show(item_id: int):
    """One mailbox as its node holds it; the form changes its password, quota or forwarding."""
    box = userdata.show("mailboxes", current_user, item_id)
    form = MailboxEditForm(data={"quota_mb": box.get("quota_mb"),
                                 "forward": ", ".join(map(unicode_name, box.get("forward") or []))})
    if form.validate_on_submit():
        try:
            userdata.update("mailboxes", current_user, item_id, form.payload())
            flash(f"Mailbox {box['address']} saved.")
            return redirect(url_for("mailboxes.show", item_id=item_id))
        except ServiceError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("mailboxes/mailbox.html", "mailboxes/_mailbox.html", box=box, form=form), status


@bp.route("/mailboxes/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id: int):
    """Remove a mailbox and its mail on the node."""
    return userdata_pages.delete("mailboxes", item_id, "Mailbox deleted.", url_for("mailboxes.index"))


@bp.route("/mailboxes/delete-selected", methods=["POST"])
@login_required
def bulk_delete():
    """Delete the ticked mailboxes: ask first naming them, then delete each and say what happened to each."""
    return userdata_pages.bulk_delete("mailboxes", "mailbox", "mailboxes", url_for("mailboxes.index"))
