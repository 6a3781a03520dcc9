"""The crypt(3) hash of a hosting account's password that the nodes' PAM checks for SFTP logins
(docs/security.md, "SFTP"): sha512-crypt, made on the master when the panel password is set, so the
clear password never leaves the master."""

from __future__ import annotations

import hashlib
import secrets

from flask import current_app

# glibc's and libxcrypt's default is 5,000 rounds; more makes a hash stolen from a node's /etc/shadow
# dearer to guess, at the cost of each SFTP login (about 0.1 s on a node's C implementation).
ROUNDS = 100_000
_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# The order in which SHA-crypt spreads the 64 bytes of the final digest over its 86 characters.
_ORDER = [(0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
          (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
          (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41)]


def _repeat(digest: bytes, length: int) -> bytes:
    """digest repeated to length bytes."""
    return (digest * (length // len(digest) + 1))[:length]


def sha512_crypt(password: str, salt: str | None = None, rounds: int = ROUNDS) -> str:
    """`$6$rounds=N$salt$hash`, Ulrich Drepper's SHA-crypt with SHA-512 (what `openssl passwd -6` and
    glibc's crypt make)."""
    key = password.encode("utf-8")
    salt_text = (salt if salt is not None else "".join(secrets.choice(_ALPHABET) for _ in range(16)))[:16]
    salt_bytes = salt_text.encode("ascii")
    rounds = max(1000, min(rounds, 999_999_999))
    alternate = hashlib.sha512(key + salt_bytes + key).digest()
    a = hashlib.sha512(key + salt_bytes + _repeat(alternate, len(key)))
    length = len(key)
    while length:
        a.update(alternate if length & 1 else key)
        length >>= 1
    digest = a.digest()
    p_bytes = _repeat(hashlib.sha512(key * len(key)).digest(), len(key))
    s_bytes = _repeat(hashlib.sha512(salt_bytes * (16 + digest[0])).digest(), len(salt_bytes))
    for round_ in range(rounds):
        c = hashlib.sha512()
        c.update(p_bytes if round_ & 1 else digest)
        if round_ % 3:
            c.update(s_bytes)
        if round_ % 7:
            c.update(p_bytes)
        c.update(digest if round_ & 1 else p_bytes)
        digest = c.digest()
    encoded = []
    for first, second, third in _ORDER:
        encoded.append(_b64_from_24bit(digest[first], digest[second], digest[third], 4))
    encoded.append(_b64_from_24bit(0, 0, digest[63], 2))
    return f"$6$rounds={rounds}${salt_text}${''.join(encoded)}"


def _b64_from_24bit(b2: int, b1: int, b0: int, count: int) -> str:
    """crypt's base-64 of three bytes, least significant six bits first."""
    value = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(count):
        out.append(_ALPHABET[value & 0x3F])
        value >>= 6
    return "".join(out)


def hash_for_nodes(password: str) -> str:
    """The hash a hosting account's nodes get for this password, at the configured cost."""
    return sha512_crypt(password, rounds=current_app.config["OS_PASSWORD_ROUNDS"])
