"""The crypt(3) hash of a hosting account's password that the nodes' PAM checks for SFTP logins
(docs/security.md, "SFTP"): sha512-crypt, made on the master when the panel password is set, so the
clear password never leaves the master."""

from __future__ import annotations

from flask import current_app

from agent.shacrypt import sha512_crypt

__all__ = ["hash_for_nodes", "sha512_crypt"]


def hash_for_nodes(password: str) -> str:
    """The hash a hosting account's nodes get for this password, at the configured cost (OS_PASSWORD_ROUNDS,
    100,000 by default: glibc's 5,000 would make a hash stolen from a node's /etc/shadow cheaper to guess;
    each SFTP login pays about 0.1 s for it on a node's C implementation)."""
    return sha512_crypt(password, rounds=current_app.config["OS_PASSWORD_ROUNDS"])
