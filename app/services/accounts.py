"""Panel accounts: password hashing, authentication, API tokens, the first admin."""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from agent import validation as v
from app.extensions import db
from app.models import ApiToken, User, UserAccount, UserLevel
from app.models.base import utcnow
from app.services import os_passwords

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown name as slow as one for a known name.
_DUMMY_HASH = _hasher.hash("hostfleet-timing-equaliser")
TOKEN_PREFIX = "hf_"
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the stored hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(name: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    # No account name holds a NUL, and PostgreSQL refuses one in a query (a 500 for anyone who types it).
    user = None if "\x00" in name else db.session.scalar(select(User).where(User.name == name))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def create_user(name: str, password: str, level: UserLevel = UserLevel.USER) -> User:
    """Create a panel account."""
    user = User(name=name, password_hash=hash_password(password), level=level.value)
    db.session.add(user)
    db.session.commit()
    return user


def set_password(user: User, password: str) -> None:
    """Change a password and end every session of the account; a hosting account's SFTP hash changes with
    it (sent to the nodes by the caller, after the commit: users.send_os_account)."""
    user.password_hash = hash_password(password)
    account = db.session.get(UserAccount, user.id)
    if account is not None:
        account.os_password_hash = os_passwords.hash_for_nodes(password)
    end_sessions(user)


def change_own_password(user: User, current: str, new: str) -> None:
    """The user changes their own password: refused (ValidationError naming the field, nothing written)
    unless `current` is their password and `new` a valid one; every other session of the account ends."""
    if not verify_password(user.password_hash, current):
        raise v.ValidationError("current_password", "is not your current password")
    new = v.password(new, "new_password")
    if new == current:
        raise v.ValidationError("new_password", "is the same as the current one: choose another")
    set_password(user, new)


def update_profile(user: User, fullname: object, comment: object) -> None:
    """Set the account's full name and comment (one line of printable text each, checked before anything
    is written)."""
    clean = {"fullname": v.text("" if fullname is None else fullname, "fullname",
                                max_length=User.fullname.type.length).strip(),
             "comment": v.text("" if comment is None else comment, "comment",
                               max_length=User.comment.type.length).strip()}
    user.fullname, user.comment = clean["fullname"], clean["comment"]
    db.session.commit()


def end_sessions(user: User) -> None:
    """End every session of the account: a session cookie names the epoch it was made in, and the
    user loader refuses any other, so copies of a cookie stop working too."""
    user.session_epoch += 1
    db.session.commit()


def load_session_user(identity: str) -> User | None:
    """The user behind a session identity "<id>:<epoch>", if that session is still valid."""
    user_id, _, epoch = identity.partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_epoch != int(epoch):
        return None
    return user


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create an API token; the raw value is returned once and only its hash is kept."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=_token_digest(raw), prefix=raw[:10])
    db.session.add(token)
    db.session.commit()
    return token, raw


# Built once: every API call runs it, and building a statement with its loader options costs about
# as much as running it (SQLAlchemy still caches the compiled form per statement shape).
_TOKEN_WITH_USER = select(ApiToken).options(joinedload(ApiToken.user).joinedload(User.account)).where(
    ApiToken.token_hash == bindparam("digest"))


def user_for_token(raw: str) -> User | None:
    """The active user owning this Bearer token, or None."""
    token = db.session.scalar(_TOKEN_WITH_USER, {"digest": _token_digest(raw)})
    if token is None or not token.user.active:
        return None
    now = utcnow()
    last = token.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    # "Last used" to the minute is enough; a write on every API call would cost a commit each.
    if last is None or now - last > TOKEN_USE_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return token.user


def ensure_first_admin(data_dir: Path, password: str | None) -> tuple[str, str | None]:
    """Create `admin` on first start; return its name and the password to print, if known.

    A generated password is kept (mode 0600) in the data dir so later starts can print it
    again, until the admin changes it.
    """
    remembered = Path(data_dir) / "initial-admin-password"
    admin = db.session.scalar(select(User).where(User.name == "admin"))
    if admin is None:
        if not password:
            password = secrets.token_urlsafe(12)
            fd = os.open(remembered, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password)
        create_user("admin", password, UserLevel.ADMIN)
        return "admin", password
    if password:
        return "admin", password if verify_password(admin.password_hash, password) else None
    if remembered.exists():
        stored = remembered.read_text().strip()
        if verify_password(admin.password_hash, stored):
            return "admin", stored
    return "admin", None
