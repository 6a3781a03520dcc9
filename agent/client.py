"""The master's side of the agent protocol: pinned HTTPS, signed requests, clear errors."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from agent.signing import sign_headers

KINDS = ("unreachable", "timeout", "tls", "auth", "http")
_FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")


class AgentError(Exception):
    """A call to an agent failed; kind says how (one of KINDS)."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        url: str,
        status: int | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.url = url
        self.status = status
        self.payload = payload


def normalize_fingerprint(value: str) -> str:
    """A SHA-256 fingerprint as 64 lowercase hex digits (colons and case are tolerated)."""
    fp = value.replace(":", "").strip().lower()
    if not _FINGERPRINT_RE.fullmatch(fp):
        raise ValueError(f"not a SHA-256 certificate fingerprint: {value!r}")
    return fp


class PinnedAdapter(HTTPAdapter):
    """HTTPS adapter that trusts exactly one certificate, by its SHA-256 fingerprint."""

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        self.fingerprint = normalize_fingerprint(fingerprint)
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # type: ignore[override]
        # CA validation is off on purpose: the agent's cert is self-signed and the pin,
        # checked by urllib3 on every new connection, is the only trust anchor.
        kwargs["verify"] = False
        return super().send(request, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        """Pool settings for request, with the pin added (it is part of urllib3's pool key)."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, False, cert)
        pool_kwargs["cert_reqs"] = "CERT_NONE"
        pool_kwargs["assert_fingerprint"] = self.fingerprint
        return host_params, pool_kwargs


class AgentClient:
    """Signed, certificate-pinned calls to one node's agent; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        fingerprint: str,
        timeout: tuple[float, float] = (3.05, 30),
        pool_size: int = 10,
    ) -> None:
        if not base_url.startswith("https://"):
            raise ValueError(f"agent URL must be https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._secret = bytes.fromhex(secret)
        self.fingerprint = normalize_fingerprint(fingerprint)
        self._session = requests.Session()
        # No proxies, netrc or CA bundles from the environment: the pin is the whole story.
        self._session.trust_env = False
        self._session.verify = False
        adapter = PinnedAdapter(self.fingerprint, pool_connections=1, pool_maxsize=pool_size)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"AgentClient({self.base_url!r})"

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._session.close()

    def request(self, method: str, path: str, json: Any = None, *, check: bool = True) -> tuple[int, Any]:
        """Send a signed request; return (status, decoded JSON or None).

        Raises AgentError for transport and TLS failures, for 401 (kind "auth"), and when
        check is true for any other status >= 400 (kind "http", with .status and .payload).
        """
        url = self.base_url + path
        prepared = requests.Request(method.upper(), url, json=json).prepare()
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        # path_url is the request target as it goes on the wire, so the agent can rebuild
        # exactly the signed string from REQUEST_URI.
        prepared.headers.update(sign_headers(self._secret, prepared.method, prepared.path_url, body))
        prepared.headers["Accept"] = "application/json"
        try:
            response = self._session.send(prepared, timeout=self.timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(url, exc) from None
        except requests.exceptions.ConnectTimeout:
            raise AgentError(
                "unreachable",
                f"{url}: no connection within {self.timeout[0]}s; check that the node is up "
                "and that its firewall lets the master reach the agent's port",
                url=url,
            ) from None
        except requests.exceptions.Timeout:
            raise AgentError(
                "timeout",
                f"{url}: the agent accepted the connection but did not answer within "
                f"{self.timeout[1]}s; check the agent's log and the node's load",
                url=url,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise AgentError(
                "unreachable",
                f"{url}: cannot connect to the agent ({_root_cause(exc)}); check that the "
                "agent service is running and that the address and port are right",
                url=url,
            ) from None
        return self._result(url, response, check)

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
        """The node's /v1/stats document."""
        return self.get("/v1/stats")[1]

    def _result(self, url: str, response: requests.Response, check: bool) -> tuple[int, Any]:
        payload = _decode(response)
        status = response.status_code
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

    def _tls_error(self, url: str, exc: Exception) -> AgentError:
        cause = _root_cause(exc)
        if "fingerprint" in cause.lower():
            return AgentError(
                "tls",
                f"{url}: the agent's TLS certificate changed (it no longer matches the pinned "
                f"fingerprint {self.fingerprint[:16]}...). If the node was reinstalled on "
                "purpose, re-pin its certificate; otherwise treat this as a possible "
                "interception and investigate before trusting the node",
                url=url,
            )
        return AgentError(
            "tls",
            f"{url}: TLS handshake with the agent failed ({cause}); check that the port serves the agent over HTTPS",
            url=url,
        )


def _decode(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"error": response.text[:200]}


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's message: requests wraps urllib3, which wraps the OS error."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            break
        seen.add(id(inner))
        exc = inner
    return str(exc)


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
