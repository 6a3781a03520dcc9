"""Wrong passwords, counted so that a brute force stops but nobody can lock the administrators out.

Two counters, in Redis (RATELIMIT_STORAGE_URI) so every web process counts the same attempts, shared
by the login form and the API's HTTP Basic (one account, one count whichever door is knocked on):

- per client and user name (LOGIN_RATE_LIMIT, "10 per minute"): the client is the browser's device
  cookie when it carries one for that name, else the client address. Over it, that client gets 429
  for that name, the right password too, until the window passes: this is what stops guessing.
  Other names from the same address, and the same name from elsewhere, are not affected.
- per user name (LOGIN_ACCOUNT_RATE_LIMIT, "50 per hour"): wrong passwords from anywhere, so many
  addresses do not buy many guesses. Over it, the name is refused to every client except a browser
  holding a device cookie for it, which a client gets only by logging in to that account with its
  password. An attacker can keep an account closed to new browsers and to HTTP Basic, never to the
  browsers its owner already uses, nor to a session already logged in to it (and Bearer tokens are never
  affected).

A correct login clears both counters. Counters are only read where a password is checked: no other
request pays for them. The client address is the peer's unless the peer is a trusted proxy
(TRUSTED_PROXIES, app/proxies.py).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask import Flask, Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

log = logging.getLogger(__name__)

RETRY_AFTER_S = 60
DEVICE_COOKIE = "hostfleet_device"
DEVICE_COOKIE_DAYS = 90
CLIENT_REFUSAL = "Too many failed logins for this user from here; wait a minute and try again."
ACCOUNT_REFUSAL = ("Too many failed logins for this user; log in from a browser that has logged in to it "
                   "before, or wait and try again later.")


def init_app(app: Flask) -> None:
    """One limiter per app, on the app's storage; a limit that does not parse stops the start."""
    for key in ("LOGIN_RATE_LIMIT", "LOGIN_ACCOUNT_RATE_LIMIT"):
        try:
            parse(app.config[key])
        except ValueError as exc:
            raise ValueError(f"{key}: {exc} (write it as '10 per minute')") from None
    app.extensions["login_attempts"] = FixedWindowRateLimiter(storage_from_string(app.config["RATELIMIT_STORAGE_URI"]))


@dataclass(frozen=True)
class Attempt:
    """One password check for a user name, and who is making it."""

    name: str
    client: tuple[str, ...]
    trusted_device: bool

    def _limiter(self) -> FixedWindowRateLimiter:
        return current_app.extensions["login_attempts"]

    def _limits(self):
        config = current_app.config
        return parse(config["LOGIN_RATE_LIMIT"]), parse(config["LOGIN_ACCOUNT_RATE_LIMIT"])

    def allow(self) -> None:
        """429 when this client is over the limit for the name, or the name is and the client is not a
        trusted device; counts nothing."""
        per_client, per_account = self._limits()
        if not self._limiter().test(per_client, *self.client):
            raise TooManyRequests(CLIENT_REFUSAL, retry_after=RETRY_AFTER_S)
        if not self.trusted_device and not self._limiter().test(per_account, "login-account", self.name):
            raise TooManyRequests(ACCOUNT_REFUSAL, retry_after=RETRY_AFTER_S)

    def failed(self) -> None:
        """Count a wrong password against this client and the name."""
        per_client, per_account = self._limits()
        self._limiter().hit(per_client, *self.client)
        self._limiter().hit(per_account, "login-account", self.name)
        log.warning("wrong password for %r from %s", self.name, request.remote_addr)

    def succeeded(self) -> None:
        """A correct login ends the name's streak of wrong passwords."""
        per_client, per_account = self._limits()
        self._limiter().clear(per_client, *self.client)
        self._limiter().clear(per_account, "login-account", self.name)


def attempt(name: str) -> Attempt:
    """The attempt to log in as `name` from this request: by device cookie when it has one for the name."""
    name = name[:64]
    device = _device_for(name)
    if device is not None:
        return Attempt(name, ("login-device", device), trusted_device=True)
    return Attempt(name, ("login-address", request.remote_addr or "", name), trusted_device=False)


def session_attempt(name: str) -> Attempt:
    """A logged-in session checking its own account's password (My account's password change): the session
    proves an earlier login with the password, as a device cookie does, so the name's count from anywhere
    does not refuse it (guessing elsewhere cannot stop the owner changing her password); its address's
    count for the name does, and its wrong passwords count against both."""
    name = name[:64]
    return Attempt(name, ("login-address", request.remote_addr or "", name), trusted_device=True)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="login-device")


def _device_for(name: str) -> str | None:
    """The device id in the request's device cookie, when the cookie is genuine and names this user."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        payload = _serializer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("user") != name or not isinstance(payload.get("device"), str):
        return None
    return payload["device"]


def remember_device(response: Response, name: str) -> None:
    """Give the browser that just logged in as `name` a device cookie (a signed random id) for it."""
    device = _device_for(name) or secrets.token_urlsafe(16)
    config = current_app.config
    response.set_cookie(
        DEVICE_COOKIE, _serializer().dumps({"user": name, "device": device}),
        max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True, samesite="Lax",
        secure=config["SESSION_COOKIE_SECURE"], path="/login",
    )
