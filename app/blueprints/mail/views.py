"""Mail → Mail domains and Mailboxes: lists from the index, changes on the node holding them."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.blueprints.domains.forms import show_errors
from app.blueprints.domains.views import dns_note, failed, listing
from app.blueprints.mail.forms import MailboxEditForm, MailboxForm, MailDomainForm
from app.htmx import render
from app.services import userdata
from app.services.userdata import UserDataError

bp = Blueprint("mail", __name__, url_prefix="/mail")


@bp.errorhandler(UserDataError)
def refused(exc: UserDataError):
    """Any refusal a view did not show in a form: the error page with its status, never a 500."""
    return render_template("errors/error.html", code=exc.status, message=exc.message), exc.status


@bp.route("/domains", methods=["GET", "POST"])
@login_required
def domains():
    """The caller's mail domains and the form to add one."""
    form = MailDomainForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("maildomains", current_user, form.payload(current_user.is_admin))
            flash(f"Mail domain {created['name']} receives mail on {created['node']}.{dns_note(created)}")
            return redirect(url_for("mail.domains"))
        except UserDataError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("mail/domains.html", "mail/_domains.html", form=form, **listing("maildomains")), status


@bp.route("/domains/<int:item_id>/delete", methods=["POST"])
@login_required
def delete_domain(item_id: int):
    """Remove a mail domain (refused by the node while it has mailboxes)."""
    try:
        userdata.delete("maildomains", current_user, item_id)
        flash("Mail domain deleted.")
    except UserDataError as exc:
        failed(exc)
    return redirect(url_for("mail.domains"))


@bp.route("/mailboxes", methods=["GET", "POST"])
@login_required
def mailboxes():
    """The caller's mailboxes and the form to add one."""
    form = MailboxForm()
    if form.validate_on_submit():
        try:
            created = userdata.create("mailboxes", current_user, form.payload())
            flash(f"Mailbox {created['address']} created.")
            return redirect(url_for("mail.mailboxes"))
        except UserDataError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("mail/mailboxes.html", "mail/_mailboxes.html", form=form, **listing("mailboxes")), status


@bp.route("/mailboxes/<int:item_id>", methods=["GET", "POST"])
@login_required
def mailbox(item_id: int):
    """One mailbox as its node holds it; the form changes its password or quota."""
    box = userdata.show("mailboxes", current_user, item_id)
    form = MailboxEditForm(data={"quota_mb": box.get("quota_mb"), "forward": ", ".join(box.get("forward") or [])})
    if form.validate_on_submit():
        try:
            userdata.update("mailboxes", current_user, item_id, form.payload())
            flash(f"Mailbox {box['address']} saved.")
            return redirect(url_for("mail.mailbox", item_id=item_id))
        except UserDataError as exc:
            show_errors(form, exc)
    status = 400 if form.errors or form.form_errors else 200
    return render("mail/mailbox.html", "mail/_mailbox.html", box=box, form=form), status


@bp.route("/mailboxes/<int:item_id>/delete", methods=["POST"])
@login_required
def delete_mailbox(item_id: int):
    """Remove a mailbox and its mail on the node."""
    try:
        userdata.delete("mailboxes", current_user, item_id)
        flash("Mailbox deleted.")
    except UserDataError as exc:
        failed(exc)
    return redirect(url_for("mail.mailboxes"))
