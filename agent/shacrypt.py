"""SHA-512 crypt (`$6$`), the password hash the nodes' PAM (SFTP logins) and dovecot (mailboxes) check."""

from __future__ import annotations

import hashlib
import secrets

DEFAULT_ROUNDS = 5000
MIN_ROUNDS = 1000
MAX_ROUNDS = 999_999_999
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# The byte order SHA-512 crypt uses when it writes the final digest in its base-64 alphabet.
_SHA512_ORDER = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54),
    (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60),
    (40, 61, 19), (62, 20, 41),
]


def _b64_24(b2: int, b1: int, b0: int, count: int) -> str:
    """Encode three bytes, low six bits first, as crypt(3) does."""
    word = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(count):
        out.append(_ITOA64[word & 0x3F])
        word >>= 6
    return "".join(out)


def _repeat_to(digest: bytes, length: int) -> bytes:
    """digest repeated and cut to length bytes."""
    return (digest * (length // len(digest) + 1))[:length]


def sha512_crypt(password: str, salt: str | None = None, rounds: int = DEFAULT_ROUNDS) -> str:
    """A `$6$` SHA-512 crypt hash (Drepper's SHA-crypt): what glibc's crypt(3) and `openssl passwd -6` make
    for the same salt and rounds (clamped to 1,000-999,999,999 as they do), and what PAM and dovecot's
    SHA512-CRYPT verify."""
    rounds = max(MIN_ROUNDS, min(rounds, MAX_ROUNDS))
    pw = password.encode("utf-8")
    salt = (salt or "".join(secrets.choice(_ITOA64) for _ in range(16)))[:16]
    s = salt.encode("ascii")
    alt = hashlib.sha512(pw + s + pw).digest()
    ctx = hashlib.sha512(pw + s)
    ctx.update(_repeat_to(alt, len(pw)))
    length = len(pw)
    while length:
        ctx.update(alt if length & 1 else pw)
        length >>= 1
    digest = ctx.digest()
    p_bytes = _repeat_to(hashlib.sha512(pw * len(pw)).digest(), len(pw))
    s_bytes = _repeat_to(hashlib.sha512(s * (16 + digest[0])).digest(), len(s))
    for index in range(rounds):
        ctx = hashlib.sha512(p_bytes if index & 1 else digest)
        if index % 3:
            ctx.update(s_bytes)
        if index % 7:
            ctx.update(p_bytes)
        ctx.update(digest if index & 1 else p_bytes)
        digest = ctx.digest()
    encoded = "".join(_b64_24(digest[a], digest[b], digest[c], 4) for a, b, c in _SHA512_ORDER)
    encoded += _b64_24(0, 0, digest[63], 2)
    prefix = "$6$" if rounds == DEFAULT_ROUNDS else f"$6$rounds={rounds}$"
    return f"{prefix}{salt}${encoded}"
