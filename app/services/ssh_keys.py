"""A hosting account's SSH public keys for SFTP (docs/security.md, "SFTP"): listed, added and deleted on
the master, sent with the OS account to every node holding the user."""

from __future__ import annotations

import base64
import hashlib

from agent import validation as v
from app.extensions import db
from app.models import User, UserAccount
from app.services.errors import NotFoundError
from app.services.userdata.errors import UserDataError, object_body, validated
from app.services.userdata.owners import account_of, send_os_account

KEY_FIELDS = ("key",)


def key_id(key: str) -> str:
    """A key's id in the API: the hex SHA-256 of its decoded data (the same key has one id, whatever its comment)."""
    return hashlib.sha256(base64.b64decode(key.split()[1])).hexdigest()


def key_dict(key: str) -> dict:
    """A key as the API and the Account page show it, with OpenSSH's SHA256 fingerprint."""
    parts = key.split(None, 2)
    digest = hashlib.sha256(base64.b64decode(parts[1])).digest()
    return {"id": key_id(key), "type": parts[0], "comment": parts[2] if len(parts) > 2 else "",
            "fingerprint": "SHA256:" + base64.b64encode(digest).decode().rstrip("="), "key": key}


def _hosting_account(user: User) -> UserAccount:
    """The user's hosting account; an account without one (an administrator) has no SFTP login."""
    account = account_of(user)
    if account is None:
        raise UserDataError(409, f"{user.name} has no hosting account, so no SFTP login to add keys to.",
                            {"key": "no hosting account"})
    return account


def list_keys(user: User) -> list[dict]:
    """The user's keys, in the order they were added."""
    account = account_of(user)
    return [key_dict(key) for key in (account.ssh_keys if account else [])]


def add_key(user: User, data: object) -> tuple[dict, list[dict]]:
    """Add a public key (checked: type, base64, size); the key and the per-node report. A key already
    there, or one over the limit, is refused naming `key`; nothing is stored."""
    data = object_body(data, KEY_FIELDS)
    key = validated(v.ssh_public_key, data.get("key"), "key")
    account = _hosting_account(user)
    keys = list(account.ssh_keys or [])
    if key_id(key) in {key_id(k) for k in keys}:
        raise UserDataError(409, "This key is already added.", {"key": "already added"})
    if len(keys) >= v.MAX_SSH_KEYS:
        raise UserDataError(409, f"At most {v.MAX_SSH_KEYS} keys; delete one first.", {"key": "too many keys"})
    account.ssh_keys = [*keys, key]
    db.session.commit()
    return key_dict(key), send_os_account(user)


def delete_key(user: User, wanted: str) -> list[dict]:
    """Delete one of the user's keys by id; the per-node report."""
    account = account_of(user)
    keys = list(account.ssh_keys or []) if account else []
    kept = [key for key in keys if key_id(key) != wanted]
    if len(kept) == len(keys):
        raise NotFoundError(f"{user.name} has no key with id {wanted}.")
    account.ssh_keys = kept
    db.session.commit()
    return send_os_account(user)
