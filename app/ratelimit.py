"""Password attempts per client address: the login form's posts and the API's wrong HTTP Basic passwords.

Both share LOGIN_RATE_LIMIT (a `limits` string, "10 per minute" by default), each with a counter of its
own, kept in Redis (RATELIMIT_STORAGE_URI) so every web process counts the same attempts. The counters
are read only where a password is checked: no other request pays for them.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

RETRY_AFTER_S = 60


def init_app(app: Flask) -> None:
    """One limiter per app, on the app's storage; a LOGIN_RATE_LIMIT that does not parse stops the start."""
    try:
        parse(app.config["LOGIN_RATE_LIMIT"])
    except ValueError as exc:
        raise ValueError(f"LOGIN_RATE_LIMIT: {exc} (write it as '10 per minute')") from None
    app.extensions["login_attempts"] = FixedWindowRateLimiter(storage_from_string(app.config["RATELIMIT_STORAGE_URI"]))


def _count(kind: str, hit: bool) -> bool:
    limiter: FixedWindowRateLimiter = current_app.extensions["login_attempts"]
    item = parse(current_app.config["LOGIN_RATE_LIMIT"])
    key = ("login", kind, request.remote_addr or "")
    return limiter.hit(item, *key) if hit else limiter.test(item, *key)


def attempt(kind: str, refusal: str) -> None:
    """Count one attempt of this kind from this address; 429 with `refusal` once it is over the limit."""
    if not _count(kind, hit=True):
        raise TooManyRequests(refusal, retry_after=RETRY_AFTER_S)


def check(kind: str, refusal: str) -> None:
    """429 with `refusal` when this address is over the limit for this kind; counts nothing."""
    if not _count(kind, hit=False):
        raise TooManyRequests(refusal, retry_after=RETRY_AFTER_S)
