"""A compromised node's agent: a real HTTPS server on loopback, pinned like an agent, answering what a
test tells it to (per path, whatever the method). It does not check the master's signatures: a node
that lies holds its secret anyway."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from agent.tls import ensure_certificate

CHUNK = 64 * 1024


class HostileAgent:
    """hostile.json("/v1/stats", []) / hostile.stream(...) / hostile.drip(...), then hostile.add_node(app)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / "cert.pem", folder / "key.pem"
        self.fingerprint = ensure_certificate(cert, key, ["localhost"], ["127.0.0.1"])
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.asked: list[str] = []
        self.stop_sending = threading.Event()
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802  (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                hostile.asked.append(path)
                answer = hostile.routes.get(path)
                if answer is None:
                    return _send(self, 404, json.dumps({"error": f"no {path} here"}).encode())
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    self.close_connection = True  # the master hung up, as it should

            do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815  (every method answers the same)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="hostile-agent", daemon=True)
        self.thread.start()

    def json(self, path: str, document: object, status: int = 200) -> None:
        """Answer path with this JSON document."""
        body = json.dumps(document).encode()
        self.routes[path] = lambda handler: _send(handler, status, body)

    def stream(self, path: str, size: int, declare_length: bool) -> None:
        """Answer path with size bytes of a JSON string, written a piece at a time (never held whole here),
        with a Content-Length or, without one, ended by closing the connection."""

        def answer(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            if declare_length:
                handler.send_header("Content-Length", str(size))
            else:
                handler.send_header("Connection", "close")
                handler.close_connection = True
            handler.end_headers()
            piece = b"x" * CHUNK
            handler.wfile.write(b'"')
            sent = 1
            while sent < size - 1 and not self.stop_sending.is_set():
                handler.wfile.write(piece[: min(CHUNK, size - 1 - sent)])
                sent += min(CHUNK, size - 1 - sent)
            handler.wfile.write(b'"')

        self.routes[path] = answer

    def drip(self, path: str, size: int, every_s: float, for_s: float) -> None:
        """Answer path with a Content-Length of size, then a byte every every_s seconds (for at most for_s)."""

        def answer(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            handler.wfile.flush()
            until = time.monotonic() + for_s
            while time.monotonic() < until and not self.stop_sending.is_set():
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(every_s)
            handler.close_connection = True

        self.routes[path] = answer

    def add_node(self, app, name: str = "evil", roles=("web", "dns", "mail"), state: str = "ready") -> int:
        """Add a node for this server (pinned to its certificate) in state; returns its id."""
        from app.extensions import db
        from app.models import NodeState
        from app.services.nodes import change_state, create_node

        with app.app_context():
            node = create_node(name, "127.0.0.1", roles=list(roles), reason="a compromised node (test)",
                               agent_port=self.port, agent_secret="ab" * 32, cert_fingerprint=self.fingerprint)
            db.session.flush()
            change_state(node, NodeState(state), "test")
            db.session.commit()
            return node.id

    def close(self) -> None:
        """Stop answering and close the server."""
        self.stop_sending.set()
        self.server.shutdown()
        self.server.server_close()


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
