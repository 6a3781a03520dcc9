"""The user's own account: API tokens."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.blueprints.account.forms import TokenForm
from app.extensions import db
from app.models import ApiToken
from app.services import accounts

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    """List the user's API tokens and create a new one (its value is shown once)."""
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        _, new_token = accounts.create_token(current_user, form.name.data.strip())
        form = TokenForm(formdata=None)
    status = 400 if form.errors else 200
    return render_template("account/tokens.html", form=form, new_token=new_token), status


@bp.route("/tokens/<int:token_id>/delete", methods=["POST"])
@login_required
def delete_token(token_id: int):
    """Revoke one of the user's tokens."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    db.session.delete(token)
    db.session.commit()
    flash(f"Token {token.name} revoked.")
    return redirect(url_for("account.tokens"))
