"""Who is asking: session login for pages, HTTP Basic or Bearer tokens for the API."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import Flask, abort, g, jsonify, redirect, request, session, url_for
from flask_login import current_user

from app import ratelimit
from app.extensions import htmx, login
from app.htmx import redirect_to
from app.services import accounts


def safe_next(target: str | None) -> str | None:
    """A post-login target only when it is a path on this site (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    return target


def admin_required(view):
    """Pages and API calls for administrators only (403 for users)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = api_user() if request.blueprint == "api" else current_user
        if not user.is_authenticated:
            return login.unauthorized()
        if not user.is_admin:
            abort(403, "This page is for administrators.")
        return view(*args, **kwargs)

    return wrapper


IMPERSONATOR = "impersonator"


def impersonator():
    """The administrator behind this session when they logged in as the customer it shows, else None."""
    if not current_user.is_authenticated:  # loads the session's user, which sets g.impersonator
        return None
    return g.get("impersonator")


def not_impersonated(view):
    """Changes an administrator logged in as a customer may not make: the customer's password, API tokens
    and SSH keys (403 to any method but GET; the pages themselves show what the customer sees)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.method not in ("GET", "HEAD") and impersonator() is not None:
            abort(403, f"An administrator logged in as {current_user.name} cannot change their password, "
                       "API tokens or SSH keys.")
        return view(*args, **kwargs)

    return wrapper


def load_session_user(identity: str):
    """The session's user; when an administrator logged in as a customer, both must still be what they were
    (the administrator's session valid and an administrator's, the customer's valid, active and not an
    administrator), or the whole session ends."""
    user = accounts.load_session_user(identity)
    admin_identity = session.get(IMPERSONATOR)
    if admin_identity is None:
        return user
    admin = accounts.load_session_user(admin_identity) if isinstance(admin_identity, str) else None
    if user is None or admin is None or not admin.is_admin or not admin.active or user.is_admin or not user.active:
        session.clear()
        return None
    g.impersonator = admin
    return user


def api_user():
    """The user authenticated for the current API request."""
    return g.get("api_user")


def authenticate_api_request():
    """HTTP Basic with panel credentials, or a Bearer API token; 401 otherwise (429 after too many wrong
    passwords for the name: app/ratelimit.py).

    No `WWW-Authenticate` challenge: a browser that is never asked for Basic credentials never
    remembers them, so no other site can make it send them here."""
    auth = request.authorization
    user = None
    if auth is not None and auth.type == "basic":
        # The login form's counters apply to the API's Basic too, or the API would be the way around them.
        attempt = ratelimit.attempt(auth.username or "")
        attempt.allow()
        user = accounts.authenticate(auth.username or "", auth.password or "")
        if user is None:
            attempt.failed()
        else:
            attempt.succeeded()
    elif auth is not None and auth.type == "bearer" and auth.token:
        user = accounts.user_for_token(auth.token)
    if user is None:
        response = jsonify(
            error="Authentication required: an Authorization header with HTTP Basic panel credentials "
                  "or a Bearer API token."
        )
        response.status_code = 401
        return response
    g.api_user = user
    return None


def init_app(app: Flask) -> None:
    """Wire Flask-Login to the accounts service."""
    login.login_view = "auth.login"
    login.login_message = "Log in to see this page."
    # Every page draws the banner of an administrator logged in as a customer (templates/base.html).
    app.context_processor(lambda: {"impersonator": impersonator})

    @login.user_loader
    def _load(identity: str):
        return load_session_user(identity)

    @login.unauthorized_handler
    def _unauthorized():
        target = url_for("auth.login", next=request.full_path.rstrip("?"))
        if htmx:
            return redirect_to(target, hx_status=401)
        if request.path.startswith("/api/"):
            return authenticate_api_request()
        return redirect(target)
