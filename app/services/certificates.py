"""Web domains' certificates on the master: the records, requests (an operation running the ACME
conversation against the web node), uploads, going back to self-signed, the HTTPS switches, renewal.

The certificate and its private key live on the web node (agent/ops/certs.py); the master records what
it knows of the certificate (names, issuer, dates, kind, state, the last error) and never holds a site's
key: an uploaded key passes through to the node in the request's body and is stored nowhere here.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.failpoints import failpoint
from app.models import (
    Certificate,
    CertificateKind,
    CertificateState,
    NodeOutcome,
    Operation,
    OperationStatus,
    User,
    WebDomainIndex,
)
from app.models.base import as_utc, iso_utc, utcnow
from app.queues import redis_connection
from app.services import acme, names, operations
from app.services.errors import ServiceError
from app.services.list_locks import ALIVE_PREFIX, Lease, lease_seconds
from app.services.userdata.errors import UserDataError
from app.services.userdata.index import get_row, list_index
from app.services.userdata.proxy import call_agent

log = logging.getLogger("hostfleet.certificates")

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
MAX_PEM = 64 * 1024
RENEW_BEFORE = timedelta(days=30)
# How often the periodic job looks for certificates to renew.
RENEWAL_INTERVAL_S = 3600
# A failed renewal is tried again after this, doubled per failure up to a day.
RETRY_FIRST = timedelta(hours=1)
RETRY_MAX = timedelta(days=1)
REQUEST_FIELDS = ("names",)
UPLOAD_FIELDS = ("certificate", "chain", "key")
SWITCH_FIELDS = ("redirect", "hsts")
ISSUE_KIND = "certificate"
ISSUE_JOB = "issue_certificate"
# The steps an issuing operation logs, in order (docs/certificates.md).
ISSUE_STEPS = ("key", "account", "order", "authorization", "challenge", "finalize", "installed")
# Requests a customer may start per hour (renewals aside): every customer's orders go through the panel's
# one ACME account, and the CA limits an account's new orders (Let's Encrypt: 300 per 3 hours).
REQUESTS_PER_HOUR = 10
# A record issuing longer than this with no operation queued or running was left behind.
STUCK_GRACE = timedelta(minutes=2)


def _bad(field: str, message: str) -> ServiceError:
    return ServiceError(f"Invalid {field}: {message}", status=400, fields={field: message})


def _object(data: object, allowed: tuple[str, ...]) -> dict:
    if not isinstance(data, dict):
        raise _bad("body", "must be a JSON object")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise _bad(unknown[0], f"unknown field (allowed: {', '.join(allowed)})")
    return data


def record_of(row: WebDomainIndex) -> Certificate:
    """The web domain's certificate record; a new one (self-signed, the node's default) when none yet."""
    cert = db.session.scalar(select(Certificate).where(Certificate.webdomain_id == row.id))
    if cert is None:
        cert = Certificate(webdomain_id=row.id, names=[row.name, *names.aliases_of(row.id)],
                           kind=CertificateKind.SELF_SIGNED.value, state=CertificateState.VALID.value,
                           issuer="", last_error="", redirect=False, hsts=False, failures=0)
        db.session.add(cert)
    return cert


def to_dict(row: WebDomainIndex, cert: Certificate | None) -> dict:
    """A certificate record as the API and pages show it."""
    expires_in = None
    if cert is not None and cert.not_after is not None:
        expires_in = (as_utc(cert.not_after) - utcnow()).days
    return {
        "id": row.id,
        "webdomain": row.name,
        "owner": row.owner.name,
        "node": row.node.name,
        "names": list(cert.names) if cert else [],
        "kind": cert.kind if cert else CertificateKind.SELF_SIGNED.value,
        "state": cert.state if cert else CertificateState.VALID.value,
        "issuer": cert.issuer if cert else "",
        "not_before": iso_utc(cert.not_before) if cert else None,
        "not_after": iso_utc(cert.not_after) if cert else None,
        "expires_in_days": expires_in,
        "last_error": cert.last_error if cert else "",
        "redirect": bool(cert and cert.redirect),
        "hsts": bool(cert and cert.hsts),
        "operation_id": cert.operation_id if cert else None,
    }


def list_certificates(actor: User, page: int = 1, per_page: int = 100) -> tuple[list[dict], int]:
    """One page of the caller's web domains with their certificates, by name, and the total."""
    rows, total = list_index("webdomains", actor, page, per_page)
    rows = [r for r in rows if r.claimed_at is None]
    certs = {c.webdomain_id: c for c in db.session.scalars(
        select(Certificate).where(Certificate.webdomain_id.in_([r.id for r in rows])))}
    return [to_dict(r, certs.get(r.id)) for r in rows], total


def show(actor: User, webdomain_id: int) -> dict:
    """One web domain's certificate record (404 for what the caller may not see)."""
    row = get_row("webdomains", actor, webdomain_id)
    return to_dict(row, db.session.scalar(select(Certificate).where(Certificate.webdomain_id == row.id)))


def _domain_path(row: WebDomainIndex) -> str:
    return f"/v1/webdomains/{quote(row.name, safe='')}/tls"


def _what(row: WebDomainIndex) -> str:
    return f"{row.owner.name}'s certificate of {row.name}"


def _facts(chain_pem: str) -> dict:
    """Names, issuer and dates of a chain's leaf (a public certificate: the master may read it)."""
    leaf = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))[0]
    try:
        dns = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        dns = []
    return {"names": dns, "issuer": leaf.issuer.rfc4514_string()[:255],
            "not_before": leaf.not_valid_before_utc, "not_after": leaf.not_valid_after_utc}


def _requested_names(row: WebDomainIndex, data: dict) -> list[str]:
    """The names a request covers: the domain and its aliases, or the subset asked for (each one of
    this web domain's names, so the owner's)."""
    held = [row.name, *names.aliases_of(row.id)]
    if "names" not in data or data["names"] is None:
        return held
    asked = data["names"]
    if not isinstance(asked, list) or not asked or not all(isinstance(n, str) for n in asked):
        raise _bad("names", "must be a non-empty list of this web domain's names")
    if len(asked) > len(held):
        raise _bad("names", f"lists more names than {row.name} has")
    lowered = [n.strip().lower().rstrip(".") for n in asked]
    foreign = [n for n in lowered if n not in held]
    if foreign:
        shown = ", ".join(repr(n[:80]) for n in foreign[:3])
        raise _bad("names", f"{shown} is not {row.name} or one of its aliases")
    if row.name not in lowered:
        raise _bad("names", f"must include {row.name}")
    if sorted(set(lowered)) != sorted(held):
        raise _bad("names", "a certificate for part of a site's names is not supported yet: list them all "
                            f"({', '.join(held)}) or leave names out")
    return held


def request_acme(actor: User, webdomain_id: int, data: object, *, renewal: bool = False) -> Operation:
    """Start the operation that gets a CA's certificate for a web domain through ACME (HTTP-01)."""
    row = get_row("webdomains", actor, webdomain_id)
    data = _object(data if data is not None else {}, REQUEST_FIELDS)
    requested = _requested_names(row, data)
    if not renewal and actor is not None and not actor.is_admin:
        _within_hourly_requests(actor)
    cert = record_of(row)
    if cert.state == CertificateState.ISSUING.value and cert.operation_id:
        running = db.session.get(Operation, cert.operation_id)
        if running is not None and running.status in (OperationStatus.QUEUED.value, OperationStatus.RUNNING.value):
            raise ServiceError(f"A certificate for {row.name} is being issued already (operation {running.id}).",
                               status=409, fields={"id": "being issued"})
    cert.state = CertificateState.ISSUING.value
    db.session.commit()
    verb = "Renew" if renewal else "Issue"
    operation = operations.start_operation(
        ISSUE_KIND, f"{verb} the certificate of {row.name}", ISSUE_JOB,
        user_id=actor.id if actor is not None else row.owner_id, targets=[row.node],
        params={"webdomain_id": row.id, "names": requested, "renewal": renewal})
    cert.operation_id = operation.id
    db.session.commit()
    return operation


def _within_hourly_requests(actor: User) -> None:
    """Refuse (429) a customer's request past REQUESTS_PER_HOUR in the last hour."""
    recent = db.session.scalar(select(func.count(Operation.id)).where(
        Operation.kind == ISSUE_KIND, Operation.created_by_id == actor.id,
        Operation.created_at > utcnow() - timedelta(hours=1)))
    if recent >= REQUESTS_PER_HOUR:
        raise ServiceError(f"At most {REQUESTS_PER_HOUR} certificate requests per hour: the CA limits the panel's "
                           "orders, which every customer shares. Try again later.", status=429,
                           fields={"id": "too many requests this hour"})


def _pem_field(data: dict, field: str, required: bool) -> str | None:
    value = data.get(field)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(field, "must be PEM text")
    if len(value) > MAX_PEM:
        raise _bad(field, f"longer than {MAX_PEM} characters")
    return value


def upload(actor: User, webdomain_id: int, data: object) -> dict:
    """Install a certificate, its chain and its key the customer brought; the node checks the key
    against the certificate and keeps it, the master records the certificate's facts only."""
    row = get_row("webdomains", actor, webdomain_id)
    data = _object(data, UPLOAD_FIELDS)
    certificate = _pem_field(data, "certificate", True)
    chain = _pem_field(data, "chain", False)
    key = _pem_field(data, "key", True)
    try:
        facts = _facts(certificate)
    except (ValueError, TypeError, UnicodeEncodeError, IndexError, UnsupportedAlgorithm, x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType):
        raise _bad("certificate", "is not a PEM certificate this panel can read (-----BEGIN CERTIFICATE-----)") \
            from None
    body = {"certificate": certificate, "key": key, **({"chain": chain} if chain else {})}
    call_agent(row.node, "PUT", _domain_path(row) + "/uploaded", body, what=_what(row))
    cert = record_of(row)
    _record_installed(cert, facts, CertificateKind.UPLOADED)
    db.session.commit()
    log.info("%s: uploaded certificate installed", row.name)
    return to_dict(row, cert)


def revert(actor: User, webdomain_id: int) -> None:
    """Put a self-signed certificate for a new key in place of the web domain's certificate."""
    row = get_row("webdomains", actor, webdomain_id)
    answer = call_agent(row.node, "DELETE", _domain_path(row) + "/certificate", None, what=_what(row))
    cert = record_of(row)
    cert.kind = CertificateKind.SELF_SIGNED.value
    cert.state = CertificateState.VALID.value
    cert.issuer, cert.last_error, cert.failures, cert.retry_after = "", "", 0, None
    cert.names = [row.name, *names.aliases_of(row.id)]
    cert.not_before = None
    cert.not_after = _parse_time(answer.get("not_after")) if isinstance(answer, dict) else None
    db.session.commit()


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def switch(actor: User, webdomain_id: int, data: object) -> dict:
    """Turn "redirect HTTP to HTTPS" and HSTS on or off (they take effect with a CA's certificate)."""
    row = get_row("webdomains", actor, webdomain_id)
    data = _object(data, SWITCH_FIELDS)
    if not data:
        raise _bad("body", "name redirect or hsts")
    for field in SWITCH_FIELDS:
        if field in data and not isinstance(data[field], bool):
            raise _bad(field, "must be true or false")
    try:
        call_agent(row.node, "PUT", _domain_path(row), data, what=_what(row))
    except UserDataError as exc:
        if exc.status != 404:
            raise
        field = next(iter(data))
        raise ServiceError(f"{row.name} has no certificate yet: request or upload one first.", status=409,
                           fields={field: "no certificate yet"}) from None
    cert = record_of(row)
    for field in SWITCH_FIELDS:
        if field in data:
            setattr(cert, field, data[field])
    db.session.commit()
    return to_dict(row, cert)


def _record_installed(cert: Certificate, facts: dict, kind: CertificateKind) -> None:
    cert.names = facts["names"]
    cert.issuer = facts["issuer"]
    cert.not_before = facts["not_before"]
    cert.not_after = facts["not_after"]
    cert.kind = kind.value
    cert.state = CertificateState.VALID.value
    cert.last_error = ""
    cert.failures = 0
    cert.retry_after = None


def acme_settings() -> dict:
    """The CA (directory URL), the account's e-mail and the CA bundle its HTTPS is checked with."""
    config = current_app.config
    bundle = config.get("ACME_CA_BUNDLE") or ""
    return {"directory_url": config.get("ACME_DIRECTORY_URL") or LETS_ENCRYPT,
            "email": config.get("ACME_EMAIL") or None, "verify": bundle or True}


def account_key(directory_url: str) -> bytes:
    """The panel's account key at this CA, made once and kept in the data folder (0600)."""
    folder = Path(current_app.config["DATA_DIR"]) / "acme"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(directory_url.encode()).hexdigest()[:16] + ".key")
    if not path.exists():
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(acme.new_account_key())
        os.replace(path.with_suffix(".tmp"), path)
    key = path.read_bytes()
    serialization.load_pem_private_key(key, password=None)
    return key


class StepFailed(Exception):
    """A step of the issuing job that is not the CA's failed (the node's key, tokens or install)."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


def run_issue(operation_id: int) -> None:
    """The issuing job: the node makes a key and CSR, the CA is asked (HTTP-01 tokens published through
    the node's agent), the node installs the chain, the record gets its dates; a line per step.

    The operation's alive key is renewed while the job runs: a worker that dies leaves the operation
    running and the record issuing until recovery (`recover_interrupted`) sees the key lapse."""
    operation = db.session.get(Operation, operation_id)
    if operation.status != OperationStatus.QUEUED.value:
        # A second copy of the job (queued again by recovery while the first was only slow).
        return
    with Lease(redis_connection(), lease_seconds(), alive_key=ALIVE_PREFIX + str(operation_id)):
        operations.mark_running(operation)
        _issue(operation)


def _issue(operation: Operation) -> None:
    row = db.session.get(WebDomainIndex, operation.params.get("webdomain_id"))
    if row is None:
        operations.finish(operation, OperationStatus.FAILED, "the web domain was deleted")
        return
    # Read once: the web domain may be deleted while the job runs (its row then no longer loads).
    node, name, site_id, what, path = row.node, row.name, row.id, _what(row), _domain_path(row)
    cert = record_of(row)
    settings = acme_settings()

    def say(line: str) -> None:
        operations.append_log(operation, line)

    def agent(step: str, method: str, url: str, body=None):
        try:
            return call_agent(node, method, url, body, what=what)
        except UserDataError as exc:
            raise StepFailed(step, exc.message) from None

    def progress(step: str, detail: dict) -> None:
        shown = ", ".join(f"{k} {v}" for k, v in detail.items() if k in ("identifier", "type", "status"))
        say(f"{step}{': ' + shown if shown else ''}")
        if step == "order":
            failpoint("cert.after_order")

    publishers = acme.Publishers(
        http_publish=lambda token, keyauth: agent("challenge", "PUT", f"/v1/acme-challenges/{token}",
                                                  {"key_authorization": keyauth}),
        http_remove=lambda token: agent("challenge", "DELETE", f"/v1/acme-challenges/{token}"),
    )
    installed: dict = {}

    def install(fullchain: str) -> None:
        agent("installed", "PUT", path + "/certificate", {"certificate": fullchain})
        installed["facts"] = _facts(fullchain)

    try:
        say(f"asking {node.name} for a key and a CSR for {name}")
        made = agent("key", "POST", path + "/key", {})
        csr = made.get("csr") if isinstance(made, dict) else None
        if not isinstance(csr, str) or "BEGIN CERTIFICATE REQUEST" not in csr:
            raise StepFailed("key", f"{node.name} answered no CSR")
        say(f"key: {node.name} made a key (kept there) and a CSR for {', '.join(made.get('names') or [name])}")
        say(f"account: {settings['directory_url']}")
        acme.issue(csr, directory_url=settings["directory_url"], email=settings["email"], publishers=publishers,
                   account_key_pem=account_key(settings["directory_url"]), progress=progress, install=install,
                   verify=settings["verify"])
    except (acme.AcmeError, StepFailed) as exc:
        step = exc.step
        problem = getattr(exc, "problem", None)
        detail = exc.message if isinstance(exc, acme.AcmeError) else str(exc)
        message = f"{name}: step {step} failed: {detail}"
        if problem and problem.get("type"):
            message += f" (CA problem {problem['type']})"
        _failed(operation, cert, node.id, message, site_id, name)
        return
    except Exception as exc:
        _failed(operation, cert, node.id, f"{name}: {type(exc).__name__}: {exc}", site_id, name)
        raise
    if _deleted(operation, site_id, name):
        return
    _record_installed(cert, installed["facts"], CertificateKind.ACME)
    db.session.commit()
    say(f"installed on {node.name}: valid until {iso_utc(cert.not_after)}")
    operations.set_node_outcome(operation, node.id, NodeOutcome.APPLIED)
    operations.finish(operation, OperationStatus.SUCCEEDED, f"{name}: certificate issued and installed")


def _failed(operation: Operation, cert: Certificate, node_id: int, message: str, webdomain_id: int,
            name: str) -> None:
    """Record a failed request: the site keeps serving what it served, the record says why."""
    db.session.rollback()
    if _deleted(operation, webdomain_id, name):
        return
    _mark_failed(db.session.merge(cert), message)
    db.session.commit()
    operations.append_log(operation, message)
    operations.set_node_outcome(operation, node_id, NodeOutcome.FAILED, message[:1000])
    operations.finish(operation, OperationStatus.FAILED, message[:4000])


def _mark_failed(cert: Certificate, message: str) -> None:
    cert.state = CertificateState.FAILED.value
    cert.last_error = message[:4000]
    cert.failures = (cert.failures or 0) + 1
    cert.retry_after = utcnow() + min(RETRY_FIRST * 2 ** (cert.failures - 1), RETRY_MAX)


def _deleted(operation: Operation, webdomain_id: int, name: str) -> bool:
    """True (and the operation failed, saying so) when the web domain was deleted while its certificate
    was being issued: the node dropped its keys with it, and its record went with the index row."""
    if db.session.scalar(select(WebDomainIndex.id).where(WebDomainIndex.id == webdomain_id)) is not None:
        return False
    message = f"{name}: the web domain was deleted while its certificate was being issued; nothing is left to do"
    operations.append_log(operation, message)
    for target in operation.nodes:
        if target.outcome == NodeOutcome.PENDING.value:
            target.outcome, target.error = NodeOutcome.FAILED.value, "the web domain was deleted"
    operations.finish(operation, OperationStatus.FAILED, message)
    return True


def recover_interrupted(operation: Operation) -> None:
    """Finish an issuing operation whose worker died (its alive key lapsed): failed, the record failed
    with what to do; a renewal is tried again after the usual back-off (renew_due)."""
    row = db.session.get(WebDomainIndex, operation.params.get("webdomain_id"))
    name = row.name if row is not None else "the web domain"
    lines = [line.split("] ", 1)[-1] for line in (operation.log or "").splitlines()]
    reached = next((line.split(":", 1)[0] for line in reversed(lines)
                    if line.split(":", 1)[0] in ISSUE_STEPS), None)
    when = f"after step {reached}" if reached else "before its first step"
    again = ("the renewal is tried again by itself after a pause (an hour, doubling up to a day)"
             if operation.params.get("renewal") else "request the certificate again")
    message = f"{name}: the worker stopped {when}; the site keeps serving the certificate it had; {again}"
    operations.append_log(operation, "recovered after the worker stopped: " + message)
    for target in operation.nodes:
        if target.outcome == NodeOutcome.PENDING.value:
            target.outcome, target.error = NodeOutcome.FAILED.value, "the worker stopped"
    cert = db.session.scalar(select(Certificate).where(Certificate.webdomain_id == row.id)) if row else None
    if cert is not None and cert.operation_id == operation.id and cert.state == CertificateState.ISSUING.value:
        _mark_failed(cert, message)
    operations.finish(operation, OperationStatus.FAILED, message)


def release_stuck(now: datetime | None = None) -> list[int]:
    """Records left issuing with no operation queued or running (their operation ended without saying so,
    or was never recorded): failed, asking for a new request; the web domains' ids."""
    now = now or utcnow()
    stuck = db.session.scalars(select(Certificate).where(
        Certificate.state == CertificateState.ISSUING.value,
        Certificate.updated_at < now - STUCK_GRACE)).all()
    released = []
    for cert in stuck:
        running = db.session.get(Operation, cert.operation_id) if cert.operation_id else None
        if running is not None and running.status in (OperationStatus.QUEUED.value, OperationStatus.RUNNING.value):
            continue
        _mark_failed(cert, f"{cert.webdomain.name}: the request ended without a result; request the certificate "
                           "again")
        released.append(cert.webdomain_id)
    db.session.commit()
    return released


def renew_due(now: datetime | None = None) -> list[int]:
    """Start a renewal for every ACME certificate within RENEW_BEFORE of its end (and a failed one whose
    back-off has passed); the operations' ids."""
    now = now or utcnow()
    due = db.session.scalars(select(Certificate).where(
        Certificate.kind == CertificateKind.ACME.value,
        Certificate.not_after.is_not(None),
        Certificate.not_after < now + RENEW_BEFORE,
        Certificate.state != CertificateState.ISSUING.value,
    )).all()
    started = []
    for cert in due:
        if cert.retry_after is not None and as_utc(cert.retry_after) > now:
            continue
        row = cert.webdomain
        try:
            started.append(request_acme(row.owner, row.id, {}, renewal=True).id)
        except ServiceError as exc:
            db.session.rollback()
            log.warning("renewal of %s not started: %s", row.name, exc.message)
    return started
