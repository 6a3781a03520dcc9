"""The ACME conversation (RFC 8555) for one CSR: account, order, authorizations, challenges, finalize.

The master never holds a site's private key: the web node made it and sent the CSR (agent/ops/certs.py),
and the chain this returns goes back to that node to be installed. Challenges are published through
callables, so HTTP-01 (the web node serves the token) and DNS-01 (a TXT record in the cluster's zone)
are the caller's to wire. Every call to the CA is retried with back-off on a rejected nonce
(`badNonce`, which a CA may send at any time) and on a connection that failed; any other refusal ends
the conversation with an AcmeError naming the step and carrying the CA's problem document.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import josepy as jose
import requests
from acme import challenges, client, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.services.errors import ServiceError

log = logging.getLogger("hostfleet.acme")

STEPS = ("account", "order", "authorization", "challenge", "finalize", "installed")
USER_AGENT = "hostfleet-acme"
ATTEMPTS = 8
BACKOFF_S = 0.2
BACKOFF_MAX_S = 5.0
POLL_S = 0.5
DEADLINE_S = 120


class AcmeError(ServiceError):
    """The CA refused or the conversation failed: `step` names where, `problem` is the CA's document."""

    status = 502

    def __init__(self, step: str, message: str, problem: dict | None = None, identifier: str | None = None):
        where = f"{step} ({identifier})" if identifier else step
        super().__init__(f"ACME {where} failed: {message}", fields={"step": step})
        self.step = step
        self.problem = problem
        self.identifier = identifier


@dataclass
class Publishers:
    """How challenges are published and withdrawn: HTTP-01 (token, key authorization) on the web node,
    DNS-01 (record name, TXT value) in the domain's zone. A missing one rules its challenge type out."""

    http_publish: Callable[[str, str], object] | None = None
    http_remove: Callable[[str], object] | None = None
    dns_publish: Callable[[str, str], object] | None = None
    dns_remove: Callable[[str, str], object] | None = None


@dataclass
class Issued:
    """A finished order: the chain as the CA sent it (leaf first) and the account used."""

    fullchain_pem: str
    account_key_pem: bytes
    account_uri: str
    order_uri: str
    steps: list[str] = field(default_factory=list)


def problem_of(error: messages.Error) -> dict:
    """The CA's problem document as a plain dict (type, detail, subproblems...)."""
    return error.to_partial_json() | {"subproblems": [s.to_partial_json() for s in error.subproblems or ()]}


def _describe(error: messages.Error) -> str:
    text = error.detail or error.title or error.typ
    for sub in error.subproblems or ():
        text += f"; {sub.identifier.value if sub.identifier else ''}: {sub.detail}"
    return f"{text} [{error.code or error.typ}]"


def retrying(step: str, call: Callable[[], object], sleep: Callable[[float], None] = time.sleep,
             attempts: int = ATTEMPTS, identifier: str | None = None):
    """Run one call to the CA; a rejected nonce or a failed connection is tried again after a growing
    pause, any other refusal becomes an AcmeError for this step."""
    delay = BACKOFF_S
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except messages.Error as exc:
            if exc.code != "badNonce" or attempt == attempts:
                raise AcmeError(step, _describe(exc), problem_of(exc), identifier) from exc
            log.info("ACME %s: nonce rejected, retrying (%d/%d)", step, attempt, attempts)
        except requests.RequestException as exc:
            if attempt == attempts:
                raise AcmeError(step, f"the CA could not be reached: {exc}", None, identifier) from exc
            log.info("ACME %s: %s, retrying (%d/%d)", step, exc, attempt, attempts)
        except errors.IssuanceError as exc:
            raise AcmeError(step, _describe(exc.error), problem_of(exc.error), identifier) from exc
        except errors.Error as exc:
            raise AcmeError(step, str(exc) or type(exc).__name__, None, identifier) from exc
        sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_S)
    raise AssertionError("unreachable")


def new_account_key() -> bytes:
    """A fresh ECDSA P-256 account key (PEM), kept by the master for its CA account."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _account_jwk(pem: bytes) -> tuple[jose.JWK, jose.JWASignature]:
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return jose.JWKEC(key=key), jose.ES256
    return jose.JWKRSA(key=key), jose.RS256


def _choose(authz: messages.Authorization, publishers: Publishers) -> messages.ChallengeBody:
    """The challenge to answer: HTTP-01 when the node can publish it (never for a wildcard), else DNS-01."""
    offered = {type(c.chall): c for c in authz.challenges}
    if publishers.http_publish and not authz.wildcard and challenges.HTTP01 in offered:
        return offered[challenges.HTTP01]
    if publishers.dns_publish and challenges.DNS01 in offered:
        return offered[challenges.DNS01]
    kinds = ", ".join(sorted(c.chall.typ for c in authz.challenges))
    raise AcmeError("challenge", f"no challenge this cluster can answer (the CA offers {kinds}; a wildcard "
                    "needs dns-01)", None, authz.identifier.value)


def issue(csr_pem: bytes | str, *, directory_url: str, email: str | None, publishers: Publishers,
          account_key_pem: bytes | None = None, progress: Callable[[str, dict], object] | None = None,
          install: Callable[[str], object] | None = None, verify: bool | str = True,
          sleep: Callable[[float], None] = time.sleep, deadline_s: float = DEADLINE_S) -> Issued:
    """Get a certificate for a CSR from the CA at directory_url; progress(step, detail) at each step,
    install(fullchain_pem) before the last ("installed"). `verify` is requests' (a CA bundle's path)."""
    csr_pem = csr_pem.encode("ascii") if isinstance(csr_pem, str) else csr_pem
    account_key_pem = account_key_pem or new_account_key()
    jwk, alg = _account_jwk(account_key_pem)
    report = progress or (lambda _step, _detail: None)
    steps: list[str] = []

    def step(name: str, **detail) -> None:
        steps.append(name)
        report(name, detail)

    net = client.ClientNetwork(jwk, alg=alg, verify_ssl=verify, user_agent=USER_AGENT)
    directory = retrying("account", lambda: client.ClientV2.get_directory(directory_url, net), sleep)
    acme = client.ClientV2(directory, net)
    registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)

    def register():
        try:
            return acme.new_account(registration)
        except errors.ConflictError as exc:
            # The key has an account already: use it (the CA answers with its URL).
            return acme.query_registration(messages.RegistrationResource(uri=exc.location,
                                                                         body=messages.Registration()))

    account = retrying("account", register, sleep)
    step("account", uri=account.uri)
    order = retrying("order", lambda: acme.new_order(csr_pem), sleep)
    step("order", uri=order.uri, identifiers=[a.body.identifier.value for a in order.authorizations])
    deadline = time.monotonic() + deadline_s
    cleanups: list[Callable[[], object]] = []
    try:
        for authz in order.authorizations:
            name = authz.body.identifier.value
            shown = f"*.{name}" if authz.body.wildcard else name
            step("authorization", identifier=shown, status=authz.body.status.name)
            if authz.body.status == messages.STATUS_VALID:
                continue
            challb = _choose(authz.body, publishers)
            response, validation = challb.response_and_validation(jwk)
            if isinstance(challb.chall, challenges.HTTP01):
                token = challb.chall.encode("token")
                publishers.http_publish(token, validation)
                if publishers.http_remove:
                    cleanups.append(lambda token=token: publishers.http_remove(token))
            else:
                record = challb.chall.validation_domain_name(name)
                publishers.dns_publish(record, validation)
                if publishers.dns_remove:
                    cleanups.append(lambda r=record, val=validation: publishers.dns_remove(r, val))
            retrying("challenge", lambda c=challb, r=response: acme.answer_challenge(c, r), sleep,
                     identifier=shown)
            step("challenge", identifier=shown, type=challb.chall.typ)
            _wait_valid(acme, authz, shown, deadline, sleep)
        wall_deadline = dt.datetime.now() + dt.timedelta(seconds=max(1.0, deadline - time.monotonic()))
        finished = retrying("finalize", lambda: acme.finalize_order(order, wall_deadline), sleep)
    finally:
        for cleanup in cleanups:
            try:
                cleanup()
            except Exception as exc:  # a challenge left published is harmless; the result is what counts
                log.warning("could not withdraw an ACME challenge: %s", exc)
    step("finalize", order=order.uri)
    if install is not None:
        install(finished.fullchain_pem)
        step("installed")
    return Issued(finished.fullchain_pem, account_key_pem, account.uri, order.uri, steps)


def _wait_valid(acme: client.ClientV2, authz: messages.AuthorizationResource, shown: str, deadline: float,
                sleep: Callable[[float], None]) -> None:
    """Poll an authorization until the CA decided; its problem document when it said no."""
    while True:
        authz, _response = retrying("challenge", lambda a=authz: acme.poll(a), sleep, identifier=shown)
        status = authz.body.status
        if status == messages.STATUS_VALID:
            return
        if status not in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
            failed = next((c.error for c in authz.body.challenges if c.error is not None), None)
            if failed is not None:
                raise AcmeError("challenge", _describe(failed), problem_of(failed), shown)
            raise AcmeError("challenge", f"the CA marked the authorization {status.name}", None, shown)
        if time.monotonic() > deadline:
            raise AcmeError("challenge", "the CA did not decide in time", None, shown)
        sleep(POLL_S)
