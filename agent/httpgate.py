"""The agent's HTTPS front: a request reaches a worker thread only once all of it has arrived.

cheroot serves each connection from one of a few worker threads that read the request with a
per-read socket timeout; a client that sends a request slowly (any customer's shell reaches the
port through lo) holds a worker for as long as it keeps trickling, and a handful of such clients
hold them all. Here the TLS handshake and the reading of each request (its head, then a body of
the declared Content-Length) are done without blocking, in the thread that watches the sockets,
into a buffer of the connection; a worker is given the connection once the whole request is
there, and reads it from that buffer. A request has a total time budget, whatever trickles in:
HEAD_TIMEOUT_S for the head, and a second more per MiB of declared body (what the master allows
for an answer of the agent); past it the connection is closed.
"""

from __future__ import annotations

import logging
import re
import selectors
import ssl
import threading
import time
import weakref

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

log = logging.getLogger("hostfleet.agent.http")

HEAD_TIMEOUT_S = 10.0
BODY_SECONDS_PER_MIB = 1.0
MAX_HEAD_BYTES = 64 * 1024
# Bodies larger than this count against the bytes all unfinished requests may hold together; a large
# body that would pass that total is refused (503) at its head, so clients sending large bodies slowly
# cannot make the agent hold more than GATE_BUFFER_BYTES for them.
SMALL_BODY_BYTES = 64 * 1024
GATE_BUFFER_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 256 * 1024

READY, WAIT, CLOSE = "ready", "wait", "close"

_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\S*)[ \t]*$", re.IGNORECASE | re.MULTILINE)
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding[ \t]*:", re.IGNORECASE | re.MULTILINE)

_pending_lock = threading.Lock()
_pending: weakref.WeakSet = weakref.WeakSet()


def _declared_length(head: bytes) -> int | None:
    """The body length a request head declares (0 for none); None when it is not one plain number."""
    found = _CONTENT_LENGTH.findall(head.replace(b"\r\n", b"\n"))
    if not found:
        return 0
    if len(set(found)) != 1 or not found[0].isdigit():
        return None
    return int(found[0])


def _held_elsewhere(me) -> int:
    """Bytes that other unfinished requests hold or are about to (their declared large bodies)."""
    with _pending_lock:
        return sum(s.reserved for s in list(_pending) if s is not me and not s._closed)


class GatedSocket(ssl.SSLSocket):
    """A server-side TLS socket whose requests are gathered by pump() before a worker reads them; the
    worker's reads get the gathered request and nothing more (the next one is gathered in its turn)."""

    _shaken = False
    _eof = False
    deadline: float | None = None
    reserved = 0
    _need: int | None = None

    def _buffers(self) -> tuple[bytearray, bytearray]:
        try:
            return self._held, self._released
        except AttributeError:
            self._held, self._released = bytearray(), bytearray()
            return self._held, self._released

    def has_held(self) -> bool:
        """Bytes of a next request already read (or waiting decrypted in TLS's own buffer)."""
        held, _ = self._buffers()
        return bool(held) or (self._shaken and not self._closed and self.pending() > 0)

    def pump(self, now: float) -> str:
        """Shake hands and read what has arrived, without blocking; READY when a whole request is
        gathered, WAIT for more, CLOSE when the connection is done (ended, refused, or out of time)."""
        held, _ = self._buffers()
        if self.deadline is None:
            self.deadline = now + HEAD_TIMEOUT_S
        timeout = self.gettimeout()
        self.settimeout(0)
        try:
            if not self._shaken:
                try:
                    self.do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return CLOSE if now > self.deadline else WAIT
                except OSError as exc:  # ssl.SSLError included: plain HTTP, garbage, a dropped handshake
                    log.info("TLS handshake with %s failed: %s", _peer(self), exc)
                    return CLOSE
                self._shaken = True
            while not self._eof:
                want = (MAX_HEAD_BYTES + 1 if self._need is None else self._need) - len(held)
                if want <= 0:
                    break
                try:
                    chunk = ssl.SSLSocket.recv(self, min(want, _READ_CHUNK))
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    break
                except OSError:
                    return CLOSE
                if not chunk:
                    self._eof = True
                    break
                held += chunk
                if self._need is None and b"\r\n\r\n" in held:
                    state = self._read_head(held)
                    if state is not None:
                        return state
        finally:
            if not self._closed:
                self.settimeout(timeout)
        if self._need is None and b"\r\n\r\n" in held:
            state = self._read_head(held)
            if state is not None:
                return state
        if self._need is not None and len(held) >= self._need:
            return self._release()
        if self._need is None and len(held) > MAX_HEAD_BYTES:
            self._refuse(b"431 Request Header Fields Too Large")
            return CLOSE
        if self._eof or now > self.deadline:
            return CLOSE
        return WAIT

    def _read_head(self, held: bytearray) -> str | None:
        """The head is complete: learn the body's length and budget; a state when decided now."""
        end = held.index(b"\r\n\r\n") + 4
        head = bytes(held[:end])
        if _TRANSFER_ENCODING.search(head.replace(b"\r\n", b"\n")):
            self._refuse(b"411 Length Required")
            return CLOSE
        length = _declared_length(head)
        if length is None:
            # Released as it is: cheroot answers the malformed head itself and closes.
            self._need = end
            return self._release()
        if length > SMALL_BODY_BYTES:
            if _held_elsewhere(self) + length > GATE_BUFFER_BYTES:
                log.warning("refused a %d-byte body from %s: unfinished requests hold too much", length, _peer(self))
                self._refuse(b"503 Service Unavailable")
                return CLOSE
            self.reserved = length
            with _pending_lock:
                _pending.add(self)
        self._need = end + length
        self.deadline += length / (1024 * 1024) * BODY_SECONDS_PER_MIB
        return None

    def _release(self) -> str:
        held, released = self._buffers()
        released += held[: self._need]
        del held[: self._need]
        self._need = None
        self.deadline = None
        self.reserved = 0
        return READY

    def _refuse(self, status: bytes) -> None:
        try:
            ssl.SSLSocket.send(self, b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass

    def recv_into(self, buffer, nbytes=0, flags=0):
        _, released = self._buffers()
        view = memoryview(buffer)
        count = min(len(released), nbytes or len(view))
        view[:count] = released[:count]
        del released[:count]
        return count

    def recv(self, buflen=1024, flags=0):
        _, released = self._buffers()
        data = bytes(released[:buflen])
        del released[:buflen]
        return data


def _peer(sock) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "a closed connection"
    return f"{host}:{port}"


class GatedTLSAdapter(BuiltinSSLAdapter):
    """TLS with no handshake in wrap() (cheroot's adapter completes it there, in the one accepting thread,
    blocking up to the socket timeout): the gate does it without blocking. The request's environ gets no
    SSL_* entries (nothing reads them)."""

    def wrap(self, sock):
        self.context.sslsocket_class = GatedSocket
        tls = self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True)
        return tls, {"wsgi.url_scheme": "https", "HTTPS": "on", **self._server_env}


class GatedServer(wsgi.Server):
    """cheroot's WSGI server, handing a connection to a worker only when a whole request has arrived."""

    def process_conn(self, conn):
        sock = conn.socket
        if not isinstance(sock, GatedSocket):
            return super().process_conn(conn)
        try:
            state = sock.pump(time.time())
        except Exception:  # noqa: BLE001 - the watching thread must live on; this connection is dropped
            log.exception("gathering a request from %s failed", _peer(sock))
            state = CLOSE
        if state is READY:
            return super().process_conn(conn)
        if state is WAIT:
            # cheroot closes a watched connection idle for its timeout: set so that this is the deadline.
            # (_selector is cheroot's own, pinned in agent/requirements.txt; put() would reset last_used.)
            conn.last_used = sock.deadline - self.timeout
            self._connections._selector.register(sock.fileno(), selectors.EVENT_READ, data=conn)
            return None
        conn.close()
        return None

    def put_conn(self, conn):
        """Back to watching after a response; a next request already read is gathered now, since the
        selector would not see it."""
        if self.ready and isinstance(conn.socket, GatedSocket) and conn.socket.has_held():
            self.process_conn(conn)
        else:
            super().put_conn(conn)
