"""The master's side of the agent protocol: pinned HTTPS, signed requests, clear errors."""

from __future__ import annotations

import hashlib
import http.client
import json as jsonlib
import re
import select
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from agent.signing import sign_headers

# "answer": the agent answered with something the master does not take (too large, see MAX_ANSWER_BYTES).
KINDS = ("unreachable", "timeout", "tls", "auth", "http", "answer")
_FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")
# Methods that may be sent again on a fresh connection when a kept-alive one turns out dead.
_IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
# The most bytes an answer may hold unless a call allows more (a node's whole listing of one kind of
# user data can be larger). A node is not trusted to keep its answers small: a larger one is refused
# while it is read, never held whole.
MAX_ANSWER_BYTES = 4 * 2**20
_READ_CHUNK = 64 * 1024


class AgentError(Exception):
    """A call to an agent failed; kind says how (one of KINDS). sent is true when the connection
    failed after the request had started going out: the agent may have acted on it."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        url: str,
        status: int | None = None,
        payload: Any = None,
        sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.url = url
        self.status = status
        self.payload = payload
        self.sent = sent


def normalize_fingerprint(value: str) -> str:
    """A SHA-256 fingerprint as 64 lowercase hex digits (colons and case are tolerated)."""
    fp = value.replace(":", "").strip().lower()
    if not _FINGERPRINT_RE.fullmatch(fp):
        raise ValueError(f"not a SHA-256 certificate fingerprint: {value!r}")
    return fp


class _PinMismatch(Exception):
    """The agent presented a certificate other than the pinned one."""


class _Oversized(Exception):
    """The answer's body is larger than the call allows; status is the answer's HTTP status."""

    def __init__(self, status: int, limit: int, declared: int | None):
        super().__init__(status)
        self.status = status
        self.limit = limit
        self.declared = declared


class _Dripping(Exception):
    """The answer's body did not arrive whole within the read timeout."""


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # CA validation is off on purpose: the agent's cert is self-signed and the pin, checked
    # on every new connection before a byte of the request is sent, is the only trust anchor.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# A kept-alive connection idle this long is closed rather than reused. The agent closes its side after
# 60 s idle (agent.server.SOCKET_TIMEOUT_S); a request written just as it does may or may not have
# reached it, which for a change can only be answered "it may have been applied".
REUSE_IDLE_S = 50.0


def _dropped(conn: http.client.HTTPSConnection, timeout: float) -> bool:
    """Whether an idle kept-alive connection was closed by the agent.

    A readable idle socket is either EOF or TLS records with no data in them (TLS 1.3 sends
    session tickets after the handshake); a non-blocking read tells the two apart.
    """
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        sock.setblocking(False)
        try:
            sock.recv(1)
        except ssl.SSLWantReadError:
            return False
        finally:
            sock.settimeout(timeout)
    except (OSError, ValueError):
        return True
    return True


class AgentClient:
    """Signed, certificate-pinned calls to one node's agent; safe to share between threads.

    Each call takes a kept-alive TLS connection from a small pool (or opens one, checking the
    pin), sends the signed headers and the body in one write, and puts the connection back.
    """

    def __init__(
        self,
        base_url: str,
        secret: str,
        fingerprint: str,
        timeout: tuple[float, float] = (3.05, 30),
        pool_size: int = 10,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        if not base_url.startswith("https://"):
            raise ValueError(f"agent URL must be https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._host = parts.hostname or ""
        self._port = parts.port or 443
        self._host_header = parts.netloc
        self._prefix = parts.path
        self.timeout = timeout
        self._secret = bytes.fromhex(secret)
        self.fingerprint = normalize_fingerprint(fingerprint)
        self._context = _client_context()
        self._idle: list[tuple[http.client.HTTPSConnection, float]] = []  # with when each went idle
        self._lock = threading.Lock()
        self._pool_size = pool_size
        self.max_answer_bytes = max_answer_bytes
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"AgentClient({self.base_url!r})"

    def close(self) -> None:
        """Close the kept-alive connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _since in idle:
            conn.close()

    def request(self, method: str, path: str, json: Any = None, *, body: bytes | None = None,
                check: bool = True, limit: int | None = None) -> tuple[int, Any]:
        """Send a signed request; return (status, decoded JSON or None).

        `body` is an already JSON-encoded body (a fan-out encodes one change once for every
        node); otherwise `json` is encoded here. The answer's body is read in pieces up to
        `limit` bytes (default: the client's max_answer_bytes) and must arrive whole within the
        read timeout. Raises AgentError for transport and TLS failures, for 401 (kind "auth"),
        for an answer larger than the limit or too slow to arrive (kind "answer"; the connection
        is dropped, the rest never read), and when check is true for any other status >= 400
        (kind "http", with .status and .payload).
        """
        limit = self.max_answer_bytes if limit is None else limit
        method = method.upper()
        url = self.base_url + path
        # The request target exactly as it goes on the wire (what the agent rebuilds from
        # REQUEST_URI to check the signature): already-escaped sequences are kept.
        target = quote(self._prefix + path, safe="/:@!$&'()*+,;=?%~-._")
        if body is None:
            body = b"" if json is None else jsonlib.dumps(json, separators=(",", ":")).encode("utf-8")
        headers = sign_headers(self._secret, method, target, body)
        headers.update({"Host": self._host_header, "Accept": "application/json",
                        "Content-Length": str(len(body))})
        if body:
            headers["Content-Type"] = "application/json"
        conn, reused = self._checkout(url)
        try:
            try:
                status, raw, keep = self._exchange(conn, method, target, body, headers, limit)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if not (reused and method in _IDEMPOTENT):
                    raise
                # The agent closed the idle connection just as it was taken: once more on a new one.
                conn, reused = self._open(url), False
                status, raw, keep = self._exchange(conn, method, target, body, headers, limit)
        except _Oversized as exc:
            conn.close()
            size = f"declares {exc.declared} bytes" if exc.declared is not None else "runs past that"
            raise AgentError(
                "answer",
                f"{url}: the agent's answer ({exc.status}) is larger than the {exc.limit} bytes the master "
                f"takes (it {size}); refused unread. A node does not need to send that much: check the node",
                url=url,
                status=exc.status,
                sent=True,
            ) from None
        except _Dripping:
            conn.close()
            raise AgentError(
                "answer",
                f"{url}: the agent's answer did not arrive whole within {self._body_time(limit):.0f}s of its "
                "start; refused. Check the node's load and its network",
                url=url,
                sent=True,
            ) from None
        except TimeoutError:
            conn.close()
            raise AgentError(
                "timeout",
                f"{url}: the agent accepted the connection but did not answer within "
                f"{self.timeout[1]}s; check the agent's log and the node's load",
                url=url,
            ) from None
        except ssl.SSLError as exc:
            conn.close()
            raise AgentError("tls", f"{url}: TLS error talking to the agent ({exc})", url=url, sent=True) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise AgentError(
                "unreachable",
                f"{url}: the connection to the agent broke ({exc or type(exc).__name__}); check that "
                "the agent service is running",
                url=url,
                sent=True,
            ) from None
        if keep:
            self._checkin(conn)
        else:
            conn.close()
        return self._result(url, status, _decode(raw), check)

    def _exchange(self, conn, method, target, body, headers, limit: int = MAX_ANSWER_BYTES) -> tuple[int, bytes, bool]:
        # http.client sends headers and a bytes body in one write (no Nagle/delayed-ACK stall).
        conn.request(method, target, body=body, headers=headers)
        sock = conn.sock  # an answer that ends the connection takes it off conn, not off its body's reads
        response = conn.getresponse()
        raw = self._read_body(sock, response, limit)
        return response.status, raw, not response.will_close

    def _read_body(self, sock, response: http.client.HTTPResponse, limit: int) -> bytes:
        """The answer's body, read in pieces: at most limit bytes, all within the body's time (see _body_time)."""
        if response.length is not None and response.length > limit:
            raise _Oversized(response.status, limit, response.length)
        deadline = time.monotonic() + self._body_time(limit)
        raw = bytearray()
        try:
            while not response.isclosed():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Dripping
                # The socket's timeout bounds each piece; the deadline bounds them all (a node sending
                # a byte now and then must not hold a poll thread for ever).
                sock.settimeout(remaining)
                try:
                    # read1: what one read of the socket brings, so the deadline is looked at between pieces.
                    piece = response.read1(_READ_CHUNK) if response.length != 0 else b""
                except TimeoutError:
                    raise _Dripping from None
                if not piece:
                    response.read()  # the answer is over: marks it so (the connection can carry the next one)
                    break
                raw += piece
                if len(raw) > limit:
                    raise _Oversized(response.status, limit, response.length)
            return bytes(raw)
        finally:
            if sock.fileno() != -1:  # an answer that ended the connection closed it
                sock.settimeout(self.timeout[1])

    def _body_time(self, limit: int) -> float:
        """How long an answer's body may take to arrive: the read timeout, plus a second per MiB the
        call allows (a large listing over a slow link still arrives; a trickle does not last)."""
        return self.timeout[1] + limit / 2**20

    def _checkout(self, url: str) -> tuple[http.client.HTTPSConnection, bool]:
        while True:
            with self._lock:
                conn, since = self._idle.pop() if self._idle else (None, 0.0)
            if conn is None:
                return self._open(url), False
            if time.monotonic() - since < REUSE_IDLE_S and not _dropped(conn, self.timeout[1]):
                return conn, True
            conn.close()

    def _checkin(self, conn: http.client.HTTPSConnection) -> None:
        with self._lock:
            if len(self._idle) < self._pool_size:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def _open(self, url: str) -> http.client.HTTPSConnection:
        """A new TLS connection whose certificate matches the pin, or AgentError."""
        conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout[1],
                                           context=self._context)
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self.timeout[0])
        except TimeoutError:
            raise AgentError(
                "unreachable",
                f"{url}: no connection within {self.timeout[0]}s; check that the node is up "
                "and that its firewall lets the master reach the agent's port",
                url=url,
            ) from None
        except OSError as exc:
            raise AgentError(
                "unreachable",
                f"{url}: cannot connect to the agent ({exc.strerror or exc}); check that the "
                "agent service is running and that the address and port are right",
                url=url,
            ) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.timeout[1])
            conn.sock = self._context.wrap_socket(sock, server_hostname=self._host)
            der = conn.sock.getpeercert(binary_form=True)
            if hashlib.sha256(der or b"").hexdigest() != self.fingerprint:
                raise _PinMismatch
        except _PinMismatch:
            conn.close()
            raise AgentError(
                "tls",
                f"{url}: the agent's TLS certificate changed (it no longer matches the pinned "
                f"fingerprint {self.fingerprint[:16]}...). If the node was reinstalled on "
                "purpose, re-pin its certificate; otherwise treat this as a possible "
                "interception and investigate before trusting the node",
                url=url,
            ) from None
        except TimeoutError:
            sock.close()
            raise AgentError(
                "timeout",
                f"{url}: the agent accepted the connection but did not complete the TLS handshake "
                f"within {self.timeout[1]}s; check the agent's log and the node's load",
                url=url,
            ) from None
        except ssl.SSLError as exc:
            sock.close()
            raise AgentError(
                "tls",
                f"{url}: TLS handshake with the agent failed ({exc}); check that the port serves the agent over HTTPS",
                url=url,
            ) from None
        except OSError as exc:
            sock.close()
            raise AgentError(
                "unreachable",
                f"{url}: the connection to the agent broke during the TLS handshake ({exc.strerror or exc})",
                url=url,
            ) from None
        self.connections_opened += 1
        return conn

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Signed GET."""
        return self.request("GET", path, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        """Signed PUT with a JSON body."""
        return self.request("PUT", path, json=json, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        """Signed POST with a JSON body."""
        return self.request("POST", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Signed DELETE."""
        return self.request("DELETE", path, **kwargs)

    def stats(self) -> dict:
        """The node's /v1/stats document (its shape is checked by the caller)."""
        return self.get("/v1/stats")[1]

    def _result(self, url: str, status: int, payload: Any, check: bool) -> tuple[int, Any]:
        if status == 401:
            reason = payload.get("error") if isinstance(payload, dict) else None
            raise AgentError(
                "auth",
                f"{url}: the agent rejected the master's signature ({reason or 'no reason given'}); "
                "check that the node's secret matches the master's and that both clocks are right",
                url=url,
                status=status,
                payload=payload,
            )
        if check and status >= 400:
            detail = payload.get("error") if isinstance(payload, dict) else None
            raise AgentError(
                "http",
                f"{url}: the agent answered {status}"
                + (f": {detail}" if detail else "")
                + ("; see the agent's log on the node" if status >= 500 else ""),
                url=url,
                status=status,
                payload=payload,
            )
        return status, payload


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return jsonlib.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return {"error": raw[:200].decode("utf-8", "replace")}


def fingerprint_of(host: str, port: int, timeout: float = 5.0) -> str:
    """SHA-256 fingerprint of the certificate a TLS server presents, for first-use pinning."""
    url = f"https://{host}:{port}"
    context = ssl.create_default_context()
    # Nothing is trusted here: the caller shows the fingerprint to the admin or stores it.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        raise AgentError("timeout", f"{url}: no TLS answer within {timeout}s", url=url) from None
    except ssl.SSLError as exc:
        raise AgentError("tls", f"{url}: TLS handshake failed ({exc})", url=url) from None
    except OSError as exc:
        raise AgentError(
            "unreachable",
            f"{url}: cannot connect ({exc.strerror or exc}); check the address, the port and that the agent is running",
            url=url,
        ) from None
    return hashlib.sha256(der).hexdigest()
