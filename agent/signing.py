"""HMAC-SHA256 request signing between the master and an agent (per-node shared secret).

The signed message is five lines joined by "\\n":
METHOD, path with query string (as sent on the wire), hex SHA-256 of the body,
timestamp (unix seconds), nonce (128-bit hex).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Hostfleet-Timestamp"
NONCE_HEADER = "X-Hostfleet-Nonce"
SIGNATURE_HEADER = "X-Hostfleet-Signature"

_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_NONCE_RE = re.compile(r"[0-9a-f]{32}")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")


class SignatureError(Exception):
    """A request failed authentication; reason is safe to log and to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signature(secret: bytes, method: str, path: str, body: bytes, timestamp: int, nonce: str) -> str:
    """Hex HMAC-SHA256 of the canonical message for one request."""
    message = "\n".join([method.upper(), path, hashlib.sha256(body).hexdigest(), str(timestamp), nonce])
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_headers(
    secret: bytes,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers that authenticate one request; timestamp and nonce are fresh unless given."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = secrets.token_hex(16) if nonce is None else nonce
    return {
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, method, path, body, timestamp, nonce),
    }


class NonceStore:
    """Nonces seen within the clock-skew window; thread-safe, expired entries are evicted.

    A nonce only needs remembering while its timestamp is still inside the window: after
    that, the timestamp check rejects the request on its own.

    Replay across an agent restart: the store lives in memory, so a restarted agent has
    forgotten every nonce. To close that gap, requests signed before the store was created
    (``not_before``, the process start) are rejected; any request captured before a restart
    is therefore dead afterwards. The cost is that requests signed in an earlier second than
    the start (plus any clock lag of the master) are refused too, and the master retries.
    """

    def __init__(self, window_s: int = 60, max_entries: int = 100_000, not_before: float | None = None):
        self.window_s = window_s
        self.max_entries = max_entries
        self.not_before = time.time() if not_before is None else not_before
        self._expiry: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def check_and_add(self, nonce: str, timestamp: int, now: float) -> None:
        """Remember nonce until its timestamp leaves the window; raise if it was already seen."""
        with self._lock:
            while self._heap and self._heap[0][0] < now:
                _, old = heapq.heappop(self._heap)
                self._expiry.pop(old, None)
            if nonce in self._expiry:
                raise SignatureError("replayed nonce")
            if len(self._expiry) >= self.max_entries:
                raise SignatureError("too many requests in the replay window")
            expiry = timestamp + self.window_s
            self._expiry[nonce] = expiry
            heapq.heappush(self._heap, (expiry, nonce))


def verify(
    secret: bytes,
    method: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    nonce_store: NonceStore,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the headers sign exactly this request, fresh and unreplayed."""
    now = time.time() if now is None else now
    raw_ts = headers.get(TIMESTAMP_HEADER)
    nonce = headers.get(NONCE_HEADER)
    given = headers.get(SIGNATURE_HEADER)
    missing = [
        name
        for name, value in ((TIMESTAMP_HEADER, raw_ts), (NONCE_HEADER, nonce), (SIGNATURE_HEADER, given))
        if not value
    ]
    if missing:
        raise SignatureError(f"missing header {', '.join(missing)}")
    if not _TIMESTAMP_RE.fullmatch(raw_ts):
        raise SignatureError("malformed timestamp")
    if not _NONCE_RE.fullmatch(nonce):
        raise SignatureError("malformed nonce")
    if not _SIGNATURE_RE.fullmatch(given):
        raise SignatureError("malformed signature")
    timestamp = int(raw_ts)
    if abs(now - timestamp) > nonce_store.window_s:
        raise SignatureError(f"timestamp outside the allowed window of {nonce_store.window_s}s (check clocks)")
    # Whole seconds: a request signed in the second the agent started is fresh, not a replay.
    if timestamp < int(nonce_store.not_before):
        raise SignatureError("request signed before the agent started")
    expected = signature(secret, method, path, body, timestamp, nonce)
    if not hmac.compare_digest(expected, given):
        raise SignatureError("bad signature")
    # Only authentic requests reach the store, so a forger cannot fill it.
    nonce_store.check_and_add(nonce, timestamp, now)
