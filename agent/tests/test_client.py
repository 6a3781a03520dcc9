"""The master's AgentClient against the real agent: pinning, signing, failure kinds."""

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.client import AgentClient, AgentError, fingerprint_of, normalize_fingerprint
from agent.tls import fingerprint


def test_stats_round_trip(client):
    """A pinned, signed call returns the decoded JSON."""
    assert client.stats()["api_version"] == 1


def test_wrong_fingerprint_is_a_tls_error(agent):
    """A certificate other than the pinned one fails as kind "tls", saying it changed."""
    wrong = agent.client(fingerprint="ab" * 32)
    with pytest.raises(AgentError) as info:
        wrong.stats()
    assert info.value.kind == "tls"
    assert "certificate changed" in str(info.value)
    assert agent.url in str(info.value)


def test_wrong_secret_is_an_auth_error(agent):
    """A client with another secret gets kind "auth" with the agent's reason."""
    with pytest.raises(AgentError) as info:
        agent.client(secret="ef" * 32).stats()
    assert (info.value.kind, info.value.status) == ("auth", 401)
    assert "bad signature" in str(info.value)


def test_stopped_agent_is_unreachable(make_agent):
    """Once the agent has stopped, calls fail as kind "unreachable"."""
    extra = make_agent()
    url, secret, fp = extra.url, extra.secret, extra.fingerprint
    assert AgentClient(url, secret, fp).stats()["api_version"] == 1
    extra.stop()
    with pytest.raises(AgentError) as info:
        AgentClient(url, secret, fp).stats()
    assert info.value.kind == "unreachable"
    assert url in str(info.value)
    assert info.value.sent is False, "refused at connect: the request never went out"


def test_a_connection_that_breaks_once_the_request_is_out_says_so(client, monkeypatch):
    """The agent read the request (and may have acted on it), then the connection broke before its answer
    arrived: kind "unreachable" with sent true, which the master answers as "may have been applied"."""
    real = AgentClient._exchange

    def answered_then_broken(self, conn, *args):
        real(self, conn, *args)
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(AgentClient, "_exchange", answered_then_broken)
    with pytest.raises(AgentError) as info:
        client.request("POST", "/v1/webdomains", json={"name": "broken.example.com", "owner": "alice"})
    assert (info.value.kind, info.value.sent) == ("unreachable", True)
    assert "the connection to the agent broke" in str(info.value)


def test_silent_server_is_a_timeout():
    """A peer that accepts but never answers fails as kind "timeout", not a hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = AgentClient(f"https://127.0.0.1:{port}", "ab" * 32, "ab" * 32, timeout=(0.5, 0.5))
        with pytest.raises(AgentError) as info:
            client.stats()
    assert info.value.kind == "timeout"


def test_http_errors_carry_status_and_payload(client):
    """Statuses >= 400 raise kind "http" with the agent's JSON, unless check=False."""
    with pytest.raises(AgentError) as info:
        client.get("/v1/does-not-exist")
    assert (info.value.kind, info.value.status) == ("http", 404)
    assert "error" in info.value.payload
    status, payload = client.get("/v1/does-not-exist", check=False)
    assert status == 404 and "error" in payload


def test_client_is_thread_safe(client):
    """Many threads sharing one client each get their own valid signature."""
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: client.stats()["api_version"], range(20)))
    assert results == [1] * 20


def test_fingerprint_of_matches_the_certificate(agent):
    """First-use pinning sees the same fingerprint as the cert file on the node."""
    assert fingerprint_of("127.0.0.1", agent.port) == fingerprint(agent.state_dir / "agent.crt")
    assert fingerprint(agent.state_dir / "agent.crt") == agent.fingerprint


def test_fingerprint_of_closed_port_is_unreachable(make_agent):
    """Fetching a fingerprint from a port nobody listens on fails as "unreachable"."""
    extra = make_agent(start=False)
    with pytest.raises(AgentError) as info:
        fingerprint_of("127.0.0.1", extra.port, timeout=1)
    assert info.value.kind == "unreachable"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("AB" * 32, "ab" * 32), (":".join(["AB"] * 32), "ab" * 32), (" " + "0f" * 32 + "\n", "0f" * 32)],
)
def test_fingerprint_spellings_are_normalized(given, expected):
    """Admins may paste fingerprints with colons or in uppercase."""
    assert normalize_fingerprint(given) == expected


@pytest.mark.parametrize("bad", ["", "ab" * 20, "zz" * 32])
def test_bad_fingerprints_are_refused(bad):
    """Anything but a SHA-256 fingerprint is a programming error, refused at once."""
    with pytest.raises(ValueError):
        normalize_fingerprint(bad)


def test_plain_http_urls_are_refused():
    """The client never speaks to an agent without TLS."""
    with pytest.raises(ValueError, match="https"):
        AgentClient("http://127.0.0.1:1", "ab" * 32, "ab" * 32)


def test_keep_alive_reuses_the_connection(agent):
    """Consecutive calls from one client share one TLS connection."""
    client = agent.client()
    for _ in range(5):
        client.stats()
    assert client.connections_opened == 1


def test_an_idle_connection_outlives_cheroots_default_timeout(agent):
    """A master's next change within a minute reuses its connection: no new TLS handshake per node
    (cheroot closes idle connections after 10 s unless told otherwise)."""
    client = agent.client()
    client.stats()
    time.sleep(12)
    client.stats()
    assert client.connections_opened == 1


def test_a_connection_near_the_agents_idle_timeout_is_not_reused(agent, monkeypatch):
    """A change is never written on a connection the agent may be closing: one idle for nearly the
    agent's timeout is replaced (a request sent as the agent closes it could only be answered "may
    have been applied")."""
    from agent import client as client_module
    from agent.server import SOCKET_TIMEOUT_S

    assert client_module.REUSE_IDLE_S <= SOCKET_TIMEOUT_S - 5
    monkeypatch.setattr(client_module, "REUSE_IDLE_S", 0.5)
    client = agent.client()
    client.stats()
    client.stats()
    assert client.connections_opened == 1, "reused while fresh"
    time.sleep(0.6)
    assert client.post("/v1/webdomains", json={"name": "x"}, check=False)[0] < 500
    assert client.connections_opened == 2, "replaced once idle past the limit"


def test_the_agent_keeps_what_it_loaded_out_of_full_collections(agent):
    """A full garbage collection walking the whole app would pause one request of a fan-out."""
    agent.client().stats()
    assert "froze" in agent.log_path.read_text()


def test_a_connection_the_agent_closed_is_replaced(agent):
    """An idle connection the agent dropped is noticed and replaced, not reported as a failure."""
    client = agent.client()
    client.stats()
    for conn, _since in client._idle:
        conn.sock.shutdown(socket.SHUT_RDWR)
    assert client.stats()["api_version"] == 1
    assert client.connections_opened == 2


def test_bodies_are_signed_as_sent(client):
    """A pre-encoded body and a JSON value reach the agent the same way (the signature covers both)."""
    status, _ = client.put("/v1/lists/scheduler", body=b'{"not": "a list"}', check=False)
    assert status == 400
    status, _ = client.put("/v1/lists/scheduler", json={"not": "a list"}, check=False)
    assert status == 400
