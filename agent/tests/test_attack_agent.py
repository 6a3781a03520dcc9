"""A hostile customer against the agent's own port: their shell on the node reaches it through lo."""

from __future__ import annotations

import socket
import ssl
import threading
import time

from agent import httpgate
from agent.client import AgentClient
from agent.config import AgentConfig
from agent.tests.conftest import prepare_agent


def tls_connection(port: int) -> ssl.SSLSocket:
    """A TLS connection to the agent, the handshake done (the agent's certificate not checked)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))


def assert_master_answered_quickly(agent) -> None:
    """The master's statistics call gets its answer within 3 s."""
    client = AgentClient(agent.url, agent.secret, agent.fingerprint, timeout=(3, 5))
    try:
        started = time.monotonic()
        client.stats()
        assert time.monotonic() - started < 3
    finally:
        client.close()


def test_a_silent_connection_does_not_hold_the_master_off(make_agent):
    """cheroot's adapter did each TLS handshake in the one accepting thread, blocking up to the socket
    timeout (60 s): one TCP connection that sends nothing (`nc node 8443` from a customer's shell, or a
    port scanner) made every request of the master fail with a handshake timeout for a minute, and
    again at each reconnect: a node nobody could change. The handshake now waits in a worker thread for
    the connection to have something to read."""
    agent = make_agent()
    silent = socket.create_connection(("127.0.0.1", agent.port))
    try:
        time.sleep(0.3)
        assert_master_answered_quickly(agent)
    finally:
        silent.close()



def test_a_bad_handshake_is_dropped_quietly(make_agent):
    """With the handshake in the worker, a failed one (plain HTTP, garbage, a client that hangs up) must
    still just close that connection: no 500 written into it, no traceback in the log, and the agent
    serves on."""
    agent = make_agent()
    for junk in (b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 100, b""):
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as conn:
            if junk:
                conn.sendall(junk)
            else:
                conn.shutdown(socket.SHUT_WR)
            assert b"500" not in conn.recv(200)  # closed, or a TLS alert; never a 500
    client = AgentClient(agent.url, agent.secret, agent.fingerprint, timeout=(3, 5))
    try:
        client.stats()
    finally:
        client.close()
    assert "Traceback" not in agent.stderr_path.read_text()


def test_a_few_trickling_connections_do_not_hold_the_master_off(make_agent):
    """Slowloris from a customer's shell: THREADS + 2 connections that each send the first bytes of a TLS
    record and then nothing took every worker thread (each waited the 60 s socket timeout in the handshake,
    longer when a byte trickled in now and then); the master's requests timed out. The handshake and the
    request are now gathered without blocking, and a worker gets a connection only with a whole request."""
    from agent.server import THREADS

    agent = make_agent()
    held = [socket.create_connection(("127.0.0.1", agent.port)) for _ in range(THREADS + 2)]
    try:
        for conn in held:
            conn.send(b"\x16\x03\x01")
        time.sleep(0.5)
        client = AgentClient(agent.url, agent.secret, agent.fingerprint, timeout=(3, 5))
        try:
            client.stats()
        finally:
            client.close()
    finally:
        for conn in held:
            conn.close()


def test_requests_trickled_after_the_handshake_do_not_hold_the_master_off(make_agent):
    """The same after a complete handshake: THREADS + 2 connections each send half a request head and wait.
    The master is answered at once; a trickled request, once whole, is answered like any other (unsigned:
    401), so a slow client is only slow, not refused."""
    from agent.server import THREADS

    agent = make_agent()
    held = [tls_connection(agent.port) for _ in range(THREADS + 2)]
    try:
        for conn in held:
            conn.sendall(b"GET /v1/stats HTTP/1.1\r\nHost: agent\r\n")
        time.sleep(0.5)
        assert_master_answered_quickly(agent)
        for piece in (b"X-Slow: ", b"1\r", b"\n\r\n"):
            held[0].sendall(piece)
            time.sleep(0.2)
        assert held[0].recv(100).startswith(b"HTTP/1.1 401 ")
    finally:
        for conn in held:
            conn.close()


def run_in_process(tmp_path, monkeypatch, **limits):
    """The agent's HTTPS server in this process (so its limits can be made small); stopped by the caller."""
    from agent.server import build_server, create_app

    for name, value in limits.items():
        monkeypatch.setattr(httpgate, name, value)
    prepared = prepare_agent(tmp_path / "inprocess")
    config = AgentConfig.load(prepared.config_path)
    server = build_server(config, create_app(config))
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    return server, server.bind_addr[1]


def test_a_request_has_a_total_time_budget_whatever_trickles_in(tmp_path, monkeypatch):
    """A per-read timeout never ends a connection that sends a byte before each read times out. The gate
    closes a request whose head is not whole within HEAD_TIMEOUT_S, however steadily bytes arrive."""
    server, port = run_in_process(tmp_path, monkeypatch, HEAD_TIMEOUT_S=1.0)
    try:
        conn = tls_connection(port)
        conn.settimeout(0.1)
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < 5:
            try:
                conn.sendall(b"X")
                if conn.recv(100) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        conn.close()
        assert closed_after is not None and closed_after < 3
    finally:
        server.stop()


def test_slow_large_bodies_cannot_hold_more_than_the_gates_buffer(tmp_path, monkeypatch):
    """Large bodies are gathered in memory before a worker sees them: a client declaring large bodies and
    sending them slowly would make the agent hold all they declare. A large body that would take the
    unfinished requests past GATE_BUFFER_BYTES is refused at its head (503); small requests still pass."""
    server, port = run_in_process(tmp_path, monkeypatch, SMALL_BODY_BYTES=1000, GATE_BUFFER_BYTES=5000)
    head = b"PUT /v1/lists/x HTTP/1.1\r\nHost: agent\r\nContent-Length: 3000\r\n\r\n"
    try:
        first = tls_connection(port)
        first.sendall(head + b"x" * 10)
        time.sleep(0.3)
        second = tls_connection(port)
        second.sendall(head)
        assert second.recv(100).startswith(b"HTTP/1.1 503 ")
        small = tls_connection(port)
        small.sendall(b"GET /v1/stats HTTP/1.1\r\nHost: agent\r\n\r\n")
        assert small.recv(100).startswith(b"HTTP/1.1 401 ")
        first.sendall(b"x" * 2990)
        assert first.recv(100).startswith(b"HTTP/1.1 401 ")
        for conn in (first, second, small):
            conn.close()
    finally:
        server.stop()
