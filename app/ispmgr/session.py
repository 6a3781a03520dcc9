"""Who is calling /ispmgr: `authinfo=login:password` per call, or a `func=auth` session id (`auth=<id>`),
or a one-time key an administrator made with `session.newkey`. Never the panel's session cookie.

Passwords go through the same checks and login rate limit as the API's HTTP Basic; an API token works
as the password. A session lives in Redis for an hour after its last use, bound to the client address
and to the account's session epoch (a password change or suspension ends it). Sessions and keys are kept
in Redis sealed with an HMAC under a key derived from the panel's secret and bound to their Redis key, so
a process able to write to Redis (what the signed jobs defend against) cannot make or change one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from flask import current_app, request
from werkzeug.exceptions import TooManyRequests

from agent import validation as v
from app import ratelimit
from app.extensions import db
from app.ispmgr.doc import IspError
from app.models import User
from app.queues import job_signing_secret, redis_connection
from app.services import accounts

SESSION_TTL_S = 3600
KEY_TTL_S = 300
_SESSION = "ispmgr:session:"
_KEY = "ispmgr:key:"


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _mac(redis_key: str, value: str) -> str:
    secret = job_signing_secret(current_app.config).encode()
    key = hmac.new(secret, b"hostfleet ispmgr session", hashlib.sha256).digest()
    return hmac.new(key, f"{redis_key}\0{value}".encode(), hashlib.sha256).hexdigest()


def _sealed(redis_key: str, value: str) -> str:
    """A value to keep under redis_key, with its MAC in front."""
    return f"{_mac(redis_key, value)}.{value}"


def _unsealed(redis_key: str, raw: bytes | None) -> str | None:
    """The value kept under redis_key when its MAC holds (one the panel wrote there), else None."""
    if not raw:
        return None
    mac, dot, value = raw.decode("utf-8", "replace").partition(".")
    if not dot or not hmac.compare_digest(mac, _mac(redis_key, value)):
        return None
    return value


def bad_password() -> IspError:
    """ISPmanager's answer to wrong credentials, the same for an unknown name."""
    return IspError("auth", "badpassword", "Invalid username or password")


def check_password(name: str, password: str) -> User:
    """The active user with these credentials (a password or one of their API tokens), rate limited."""
    if password.startswith(accounts.TOKEN_PREFIX):
        # A token cannot be guessed, so the login limits never refuse a right one (as for a Bearer token):
        # otherwise anyone's wrong passwords for the billing system's login would lock its token out.
        user = accounts.user_for_token(password)
        if user is not None and user.name == name:
            return user
    attempt = ratelimit.attempt(name)
    try:
        attempt.allow()
    except TooManyRequests as exc:
        raise IspError("auth", "toomany", exc.description) from None
    if password.startswith(accounts.TOKEN_PREFIX):
        user = None
    else:
        user = accounts.authenticate(name, password)
    if user is None:
        attempt.failed()
        raise bad_password()
    attempt.succeeded()
    return user


def from_authinfo(authinfo: str) -> User:
    """`login:password`, split at the first colon."""
    name, sep, password = authinfo.partition(":")
    if not sep or not name:
        raise IspError("auth", "authinfo", "authinfo must be login:password", authinfo[:64])
    return check_password(name, password)


def open_session(user: User) -> str:
    """A new session id for the user, bound to this client's address."""
    sid = secrets.token_hex(16)
    record = {"user_id": user.id, "epoch": user.session_epoch, "address": request.remote_addr or ""}
    key = _SESSION + _digest(sid)
    redis_connection().set(key, _sealed(key, json.dumps(record)), ex=SESSION_TTL_S)
    return sid


def from_session(sid: str) -> User:
    """The user of a live session from the address that opened it; its hour starts again."""
    key = _SESSION + _digest(sid)
    raw = _unsealed(key, redis_connection().get(key))
    record = json.loads(raw) if raw else None
    if not isinstance(record, dict) or record.get("address") != (request.remote_addr or ""):
        raise IspError("auth", "session", "The session has expired or belongs to another address")
    user = db.session.get(User, record["user_id"])
    if user is None or not user.active or user.session_epoch != record["epoch"]:
        redis_connection().delete(key)
        raise IspError("auth", "session", "The session has expired or belongs to another address")
    redis_connection().expire(key, SESSION_TTL_S)
    return user


def new_key(user: User, key: str) -> None:
    """Remember a one-time login key for the user (session.newkey), for KEY_TTL_S seconds."""
    key = _validated_key(key)
    redis_key = _KEY + _digest(key)
    redis_connection().set(redis_key, _sealed(redis_key, str(user.id)), ex=KEY_TTL_S)


def user_for_key(name: str, key: str) -> User:
    """The user a one-time key was made for; the key is used up."""
    key = _validated_key(key)
    redis_key = _KEY + _digest(key)
    raw = _unsealed(redis_key, redis_connection().getdel(redis_key))
    user = db.session.get(User, int(raw)) if raw and raw.isascii() and raw.isdigit() else None
    if user is None or user.name != name or not user.active:
        raise IspError("auth", "badkey", "The key is unknown, used or expired")
    return user


def _validated_key(key: str) -> str:
    """A key long enough not to be guessed: 16-128 printable characters."""
    try:
        key = v.text(key, "key", 128, False)
    except v.ValidationError:
        raise IspError("value", "key", "key must be 16-128 printable characters") from None
    if len(key) < 16:
        raise IspError("value", "key", "key must be 16-128 printable characters")
    return key
