"""The user's own account: full name and comment, password, API tokens, SFTP keys."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user

from agent.validation import ValidationError
from app import ratelimit
from app.auth_hooks import not_impersonated
from app.blueprints.account.forms import PasswordForm, ProfileForm, SshKeyForm, TokenForm
from app.errors import show_errors
from app.extensions import db
from app.models import ApiToken
from app.services import accounts, ssh_keys, users
from app.services.errors import ServiceError

bp = Blueprint("account", __name__, url_prefix="/account")


def account_page(profile: ProfileForm | None = None, password: PasswordForm | None = None):
    """The account page with its two forms (a form given is the one just posted, with its errors)."""
    profile = profile or ProfileForm(formdata=None, data={"fullname": current_user.fullname,
                                                          "comment": current_user.comment})
    password = password or PasswordForm(formdata=None)
    status = 400 if any(f.errors or f.form_errors for f in (profile, password)) else 200
    return render_template("account/index.html", profile=profile, password=password), status


@bp.route("", methods=["GET", "POST"])
@login_required
def index():
    """The account: name, level, full name and comment (saved here), the password form, the tokens link."""
    form = ProfileForm()
    if not form.is_submitted():
        return account_page()
    if form.validate():
        try:
            accounts.update_profile(current_user, form.fullname.data, form.comment.data)
            flash("Your full name and comment are saved.")
            return redirect(url_for("account.index"))
        except ValidationError as exc:
            db.session.rollback()
            show_errors(form, exc)
    return account_page(profile=form)


@bp.route("/password", methods=["POST"])
@login_required
@not_impersonated
def password():
    """Change the password, given the current one; every other session of the account ends, this one
    goes on. Wrong current passwords count against the login limits (app/ratelimit.py)."""
    form = PasswordForm()
    if form.validate():
        attempt = ratelimit.session_attempt(current_user.name)
        attempt.allow()
        try:
            accounts.change_own_password(current_user, form.current_password.data, form.new_password.data)
        except ValidationError as exc:
            if exc.field == "current_password":
                attempt.failed()
            show_errors(form, exc)
        else:
            attempt.succeeded()
            login_user(current_user._get_current_object())  # this session, in the account's new epoch
            flash("Your password is changed; your other sessions are logged out.")
            missed = users.send_os_account(current_user)
            users.log_missed_nodes(current_user, "SFTP password", missed)
            for entry in missed:
                if entry["outcome"] != "applied":
                    flash(f"Your SFTP password on {entry['node']} changes when that node is reachable again.")
            return redirect(url_for("account.index"))
    return account_page(password=form)


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
@not_impersonated
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
@not_impersonated
def delete_token(token_id: int):
    """Revoke one of the user's tokens."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    db.session.delete(token)
    db.session.commit()
    flash(f"Token {token.name} revoked.")
    return redirect(url_for("account.tokens"))


def sftp_page(form: SshKeyForm | None = None, status: int = 200):
    """The SFTP page: where and how to log in, the keys, the form to add one."""
    form = form or SshKeyForm(formdata=None)
    account = users.account_of(current_user)
    nodes = users.nodes_of(current_user) if account is not None else []
    return render_template("account/sftp.html", form=form, account=account, nodes=nodes,
                           keys=ssh_keys.list_keys(current_user)), status


@bp.route("/sftp", methods=["GET", "POST"])
@login_required
@not_impersonated
def sftp():
    """SFTP access: the nodes and login, the user's public keys; a posted key is added and sent to the nodes."""
    form = SshKeyForm()
    if not form.is_submitted():
        return sftp_page()
    if form.validate():
        try:
            key, report = ssh_keys.add_key(current_user, {"key": form.key.data})
        except ServiceError as exc:
            db.session.rollback()
            show_errors(form, exc)
            return sftp_page(form, exc.status)
        flash(f"Key {key['fingerprint']} added.")
        _flash_missed(report)
        return redirect(url_for("account.sftp"))
    return sftp_page(form, 400)


@bp.route("/sftp/keys/<key_id>/delete", methods=["POST"])
@login_required
@not_impersonated
def delete_sshkey(key_id: str):
    """Delete one of the user's SFTP keys on the master and every node holding the user."""
    try:
        report = ssh_keys.delete_key(current_user, key_id)
    except ServiceError:
        abort(404)
    flash("Key deleted.")
    _flash_missed(report)
    return redirect(url_for("account.sftp"))


def _flash_missed(report: list[dict]) -> None:
    """Name the nodes a change did not reach yet (each gets it at its next sync)."""
    users.log_missed_nodes(current_user, "SFTP keys", report)
    for entry in report:
        if entry["outcome"] != "applied":
            flash(f"{entry['node']} gets this change when it is reachable again.")
