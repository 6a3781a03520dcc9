"""Domains → SSL certificates: each web domain's certificate, requests, uploads, switches, delete."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from app.blueprints.certificates.forms import RequestForm, SwitchesForm, UploadForm
from app.errors import refused, show_errors
from app.htmx import redirect_to, render
from app.services import certificates
from app.services.errors import ServiceError

bp = Blueprint("certificates", __name__, url_prefix="/domains/certificates")
PER_PAGE = 50


@bp.route("/")
@login_required
def index():
    """The caller's web domains with their certificates: names, kind, issuer, expiry, state, last error."""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows, total = certificates.list_certificates(current_user, page, PER_PAGE)
    return render("certificates/index.html", "certificates/_table.html", rows=rows, page_no=page,
                  pages=max(1, -(-total // PER_PAGE)), total=total)


@bp.route("/<int:item_id>", methods=["GET", "POST"])
@login_required
def show(item_id: int):
    """One web domain's certificate; the form uploads a certificate of one's own."""
    try:
        cert = certificates.show(current_user, item_id)
    except ServiceError as exc:
        return refused(exc, back=url_for("certificates.index"))
    form = UploadForm()
    if form.validate_on_submit():
        try:
            certificates.upload(current_user, item_id, form.payload())
            flash(f"Your certificate is installed for {cert['webdomain']}.")
            return redirect(url_for("certificates.show", item_id=item_id))
        except ServiceError as exc:
            show_errors(form, exc)
        # A private key is never sent back, not even to whoever just typed it.
        form.key.data = ""
    status = 400 if form.errors or form.form_errors else 200
    return render("certificates/show.html", "certificates/_show.html", cert=cert, form=form,
                  request_form=RequestForm(), switches=SwitchesForm(data=cert)), status


@bp.route("/<int:item_id>/request", methods=["POST"])
@login_required
def request_acme(item_id: int):
    """Start the operation that gets a CA's certificate, and follow it."""
    form = RequestForm()
    if not form.validate_on_submit():
        return refused(ServiceError("The form was not accepted; try again.", status=400),
                       back=url_for("certificates.show", item_id=item_id))
    try:
        operation = certificates.request_acme(current_user, item_id, form.payload())
    except ServiceError as exc:
        return refused(exc, back=url_for("certificates.show", item_id=item_id))
    return redirect_to(url_for("operations.show", operation_id=operation.id))


@bp.route("/<int:item_id>/switches", methods=["POST"])
@login_required
def switches(item_id: int):
    """Turn redirect-to-HTTPS and HSTS on or off."""
    form = SwitchesForm()
    back = url_for("certificates.show", item_id=item_id)
    if not form.validate_on_submit():
        return refused(ServiceError("The form was not accepted; try again.", status=400), back=back)
    try:
        certificates.switch(current_user, item_id, form.payload())
    except ServiceError as exc:
        return refused(exc, back=back)
    flash("HTTPS settings saved.")
    return redirect_to(back)


@bp.route("/<int:item_id>/delete", methods=["POST"])
@login_required
def delete(item_id: int):
    """Go back to a self-signed certificate (for a new key made on the web node)."""
    back = url_for("certificates.index")
    try:
        certificates.revert(current_user, item_id)
    except ServiceError as exc:
        return refused(exc, back=back)
    flash("The certificate was replaced by a self-signed one.")
    return redirect_to(back)
