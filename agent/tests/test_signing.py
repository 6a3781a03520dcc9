"""Request signing: what verify accepts and every way it must refuse."""

import threading

import pytest

from agent.signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NonceStore,
    SignatureError,
    sign_headers,
    signature,
    verify,
)

SECRET = bytes.fromhex("11" * 32)
NOW = 1_800_000_000
NONCE = "0123456789abcdef0123456789abcdef"
REQUEST = ("PUT", "/v1/lists/firewall?dry=1", b'{"rows": []}')


def store(**kwargs) -> NonceStore:
    """A nonce store whose process started well before NOW."""
    kwargs.setdefault("not_before", NOW - 3600)
    return NonceStore(**kwargs)


def signed(**overrides) -> dict:
    """Headers for REQUEST signed at NOW with NONCE."""
    return sign_headers(SECRET, *REQUEST, timestamp=NOW, nonce=NONCE) | overrides


def test_valid_request_passes():
    """A request verified with the secret it was signed with is accepted."""
    verify(SECRET, *REQUEST, signed(), store(), now=NOW)


def test_fresh_headers_differ_each_time():
    """Without overrides every signature gets its own nonce and the current time."""
    a, b = (sign_headers(SECRET, *REQUEST) for _ in range(2))
    assert a[NONCE_HEADER] != b[NONCE_HEADER]
    assert len(a[NONCE_HEADER]) == 32 and len(a[SIGNATURE_HEADER]) == 64
    verify(SECRET, *REQUEST, a, NonceStore(not_before=0))


def test_signature_covers_each_field():
    """Changing any one signed field changes the signature."""
    base = signature(SECRET, "PUT", "/p?q=1", b"x", NOW, NONCE)
    variants = [
        signature(SECRET, "GET", "/p?q=1", b"x", NOW, NONCE),
        signature(SECRET, "PUT", "/p?q=2", b"x", NOW, NONCE),
        signature(SECRET, "PUT", "/p?q=1", b"y", NOW, NONCE),
        signature(SECRET, "PUT", "/p?q=1", b"x", NOW + 1, NONCE),
        signature(SECRET, "PUT", "/p?q=1", b"x", NOW, "f" * 32),
        signature(b"other secret key", "PUT", "/p?q=1", b"x", NOW, NONCE),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


@pytest.mark.parametrize(
    ("case", "request_", "headers", "reason"),
    [
        ("method changed", ("POST", *REQUEST[1:]), signed(), "bad signature"),
        ("path changed", ("PUT", "/v1/lists/cron?dry=1", REQUEST[2]), signed(), "bad signature"),
        ("query changed", ("PUT", "/v1/lists/firewall?dry=0", REQUEST[2]), signed(), "bad signature"),
        ("body changed", (*REQUEST[:2], b'{"rows": [1]}'), signed(), "bad signature"),
        ("signature forged", REQUEST, signed(**{SIGNATURE_HEADER: "0" * 64}), "bad signature"),
        ("nonce swapped", REQUEST, signed(**{NONCE_HEADER: "f" * 32}), "bad signature"),
        ("timestamp moved", REQUEST, signed(**{TIMESTAMP_HEADER: str(NOW + 5)}), "bad signature"),
        ("no timestamp", REQUEST, signed(**{TIMESTAMP_HEADER: ""}), "missing header X-Hostfleet-Timestamp"),
        ("no nonce", REQUEST, signed(**{NONCE_HEADER: ""}), "missing header X-Hostfleet-Nonce"),
        ("no signature", REQUEST, signed(**{SIGNATURE_HEADER: ""}), "missing header X-Hostfleet-Signature"),
        ("no headers", REQUEST, {}, "missing header"),
        ("timestamp not a number", REQUEST, signed(**{TIMESTAMP_HEADER: "soon"}), "malformed timestamp"),
        ("negative timestamp", REQUEST, signed(**{TIMESTAMP_HEADER: "-5"}), "malformed timestamp"),
        ("short nonce", REQUEST, signed(**{NONCE_HEADER: "abc"}), "malformed nonce"),
        ("uppercase nonce", REQUEST, signed(**{NONCE_HEADER: NONCE.upper()}), "malformed nonce"),
        ("short signature", REQUEST, signed(**{SIGNATURE_HEADER: "ab"}), "malformed signature"),
    ],
)
def test_tampered_requests_are_refused(case, request_, headers, reason):
    """Each alteration of a signed request is refused with its own reason."""
    with pytest.raises(SignatureError) as info:
        verify(SECRET, *request_, headers, store(), now=NOW)
    assert reason in info.value.reason


def test_wrong_secret_is_refused():
    """A request signed with another node's secret does not verify."""
    headers = sign_headers(bytes.fromhex("22" * 32), *REQUEST, timestamp=NOW, nonce=NONCE)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(SECRET, *REQUEST, headers, store(), now=NOW)


@pytest.mark.parametrize(
    ("now", "accepted"),
    [(NOW, True), (NOW + 60, True), (NOW - 60, True), (NOW + 61, False), (NOW - 61, False), (NOW + 3600, False)],
)
def test_timestamp_window(now, accepted):
    """Timestamps are accepted within plus or minus the window and refused outside it."""
    if accepted:
        verify(SECRET, *REQUEST, signed(), store(window_s=60), now=now)
    else:
        with pytest.raises(SignatureError, match="outside the allowed window"):
            verify(SECRET, *REQUEST, signed(), store(window_s=60), now=now)


def test_request_signed_before_start_is_refused():
    """A request captured before a restart cannot be replayed to the new process."""
    with pytest.raises(SignatureError, match="before the agent started"):
        verify(SECRET, *REQUEST, signed(), store(not_before=NOW + 1.5), now=NOW + 2)


def test_request_signed_in_the_second_the_agent_started_is_accepted():
    """Timestamps are whole seconds, so the start second itself is not held against a request."""
    verify(SECRET, *REQUEST, signed(), store(not_before=NOW + 0.5), now=NOW + 1)


def test_replayed_nonce_is_refused():
    """The same signed request is accepted once."""
    nonces = store()
    verify(SECRET, *REQUEST, signed(), nonces, now=NOW)
    with pytest.raises(SignatureError, match="replayed nonce"):
        verify(SECRET, *REQUEST, signed(), nonces, now=NOW + 1)


def test_forged_requests_do_not_fill_the_store():
    """Only requests with a valid signature are remembered."""
    nonces = store()
    with pytest.raises(SignatureError):
        verify(SECRET, *REQUEST, signed(**{SIGNATURE_HEADER: "0" * 64}), nonces, now=NOW)
    assert len(nonces) == 0


def test_expired_nonces_are_evicted():
    """Nonces are forgotten once their timestamp has left the window."""
    nonces = store(window_s=60)
    for i in range(100):
        nonces.check_and_add(f"{i:032x}", NOW, now=NOW)
    assert len(nonces) == 100
    nonces.check_and_add("f" * 32, NOW + 61, now=NOW + 61)
    assert len(nonces) == 1


def test_store_is_bounded():
    """Past max_entries live nonces, new ones are refused rather than growing memory."""
    nonces = store(max_entries=3)
    for i in range(3):
        nonces.check_and_add(f"{i:032x}", NOW, now=NOW)
    with pytest.raises(SignatureError, match="too many"):
        nonces.check_and_add("f" * 32, NOW, now=NOW)


def test_concurrent_replays_accept_exactly_one():
    """Racing threads presenting one nonce: exactly one wins."""
    nonces = store()
    results = []
    barrier = threading.Barrier(16)

    def attempt():
        barrier.wait()
        try:
            verify(SECRET, *REQUEST, signed(), nonces, now=NOW)
            results.append("ok")
        except SignatureError:
            results.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
