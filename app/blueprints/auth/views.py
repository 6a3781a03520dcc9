"""Logging in and out."""

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app import ratelimit
from app.auth_hooks import safe_next
from app.blueprints.auth.forms import LoginForm
from app.services import accounts

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; log in with a user name and password (LOGIN_RATE_LIMIT posts per address)."""
    if request.method == "POST":
        ratelimit.attempt("form", "Too many login attempts; wait a minute and try again.")
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.username.data, form.password.data)
        if user is None:
            form.password.errors.append("Wrong user name or password.")
        else:
            session.clear()  # a fresh session on login (no fixation)
            session.permanent = True  # ends after PERMANENT_SESSION_LIFETIME without a request
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("main.index"))
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    """Log out and forget the session."""
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
