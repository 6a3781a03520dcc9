"""Logging in and out."""

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app import ratelimit
from app.auth_hooks import IMPERSONATOR, impersonator, safe_next
from app.blueprints.auth.forms import LoginForm
from app.services import accounts, impersonation

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; log in with a user name and password (wrong passwords limited: app/ratelimit.py)."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        attempt = ratelimit.attempt(form.username.data)
        attempt.allow()
        user = accounts.authenticate(form.username.data, form.password.data)
        if user is None:
            attempt.failed()
            form.password.errors.append("Wrong user name or password.")
        else:
            attempt.succeeded()
            session.clear()  # a fresh session on login (no fixation)
            session.permanent = True  # ends after PERMANENT_SESSION_LIFETIME without a request
            login_user(user)
            response = redirect(safe_next(request.args.get("next")) or url_for("main.index"))
            ratelimit.remember_device(response, user.name)
            return response
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    """Log out: every session of the account ends, copies of this cookie included. An administrator logged
    in as a customer logs themselves out (the customer's own sessions go on)."""
    admin = impersonator()
    if admin is not None:
        impersonation.record(impersonation.ENDED, admin, current_user, request.remote_addr, how="logged out")
        accounts.end_sessions(admin)
    elif current_user.is_authenticated:
        accounts.end_sessions(current_user)
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/login-as/return", methods=["POST"])
def return_to_admin():
    """End logging in as a customer: the administrator's own session again, on the customer's page."""
    admin = impersonator()
    if admin is None:
        flash("You are not logged in as another user.")
        return redirect(url_for("main.index" if current_user.is_authenticated else "auth.login"))
    subject_id = current_user.id
    impersonation.record(impersonation.ENDED, admin, current_user, request.remote_addr, how="returned to their account")
    session.pop(IMPERSONATOR, None)
    login_user(admin)
    flash(f"You are back in your own account, {admin.name}.")
    return redirect(url_for("users.show", user_id=subject_id))
