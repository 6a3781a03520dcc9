"""A hostile customer against the agent's own port: their shell on the node reaches it through lo."""

from __future__ import annotations

import socket
import time

from agent.client import AgentClient


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
        client = AgentClient(agent.url, agent.secret, agent.fingerprint, timeout=(3, 5))
        try:
            started = time.monotonic()
            client.stats()
            assert time.monotonic() - started < 3
        finally:
            client.close()
    finally:
        silent.close()
