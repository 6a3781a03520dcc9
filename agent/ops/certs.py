"""A web domain's TLS: the private key and CSR made here, the certificate installed, HTTP-01 tokens.

The key is made on this node and never leaves it: `make_key` answers with the CSR only. Keys live in
`<state_dir>/tls/` (0700) as `<domain>.<key id>.key` (0600), written once and never rewritten; the
certificate the master installs is checked against the key the node holds before nginx sees it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from agent import fsutil
from agent import validation as v
from agent.ops import apply, web

KIND = web.TLS_KIND
KEY_TYPES = ("ecdsa", "rsa")
RSA_BITS = 2048
SELF_SIGNED_DAYS = 365
MAX_PEM = 64 * 1024
CN_MAX = 64
CHALLENGE_DIR = web.CHALLENGE_DIR
# RFC 8555 §8.1: a token and a key authorization are base64url without padding; the thumbprint is a
# SHA-256 digest (43 characters).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")
_PEM_TEXT = re.compile(r"[\x20-\x7e\r\n\t]+")
KEY_FIELDS = ("key_type", "wildcard")
INSTALL_FIELDS = ("certificate", "chain")
SETTINGS_FIELDS = ("redirect", "hsts")
UPLOAD_FIELDS = ("certificate", "chain", "key")
_PEM_KEY = re.compile(r"-----BEGIN (?:EC |RSA )?PRIVATE KEY-----")
# PKCS#8's encrypted form, and OpenSSL's own (a Proc-Type header inside an RSA or EC key).
_PEM_ENCRYPTED = re.compile(r"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED")


def key_dir(config) -> Path:
    """The agent's private folder of keys and certificates."""
    return web.tls_dir(config)


def _key_id(public_key) -> str:
    """The first 16 hex digits of the SHA-256 of a public key's DER form."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def _key_path(config, name: str, key_id: str) -> Path:
    return web.key_path(config, name, key_id)


def _record(config, name: str) -> dict | None:
    return next((r for r in apply.load_records(config, KIND) if r["name"] == name), None)


def _save_record(config, record: dict) -> None:
    records = [r for r in apply.load_records(config, KIND) if r["name"] != record["name"]]
    apply.save_records(config, KIND, sorted([*records, record], key=lambda r: r["name"]))


def _load_key(config, name: str, key_id: str):
    return serialization.load_pem_private_key(_key_path(config, name, key_id).read_bytes(), password=None)


def _ensure_key_dir(config) -> Path:
    folder = key_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def get(config, name: str) -> dict:
    """What the node holds for a domain's TLS (never the key): certificate facts and switches."""
    web.get(config, name)
    record = _record(config, name)
    if record is None:
        raise apply.NotFound("certificate of", name)
    return {k: record.get(k) for k in ("name", "names", "self_signed", "not_after", "redirect", "hsts",
                                       "key_type", "pending")}


def make_key(config, name: str, data: object) -> dict:
    """Make a private key and a CSR for a web domain and its aliases (and `*.<domain>` with "wildcard");
    answer the CSR (PEM).

    With no certificate yet, a self-signed one for the new key is installed at once, so the domain
    answers on 443 until a real one arrives. With one, the new key waits (pending) until a certificate
    for it is installed; the site keeps serving the old pair meanwhile.
    """
    data = v.object_fields(data if data is not None else {}, "body", KEY_FIELDS)
    key_type = v.choice(data.get("key_type", "ecdsa"), "key_type", KEY_TYPES)
    wildcard = v.boolean(data.get("wildcard", False), "wildcard")
    with apply.OP_LOCK:
        domain = web.get(config, name)
        names = [domain["name"], *domain["aliases"]]
        if wildcard:
            names.append(f"*.{domain['name']}")
        key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ecdsa" else \
            rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        key_id = _key_id(key.public_key())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _ensure_key_dir(config)
        fsutil.atomic_write(_key_path(config, name, key_id), pem, 0o600)
        record = _record(config, name)
        if record is None:
            record = {"name": name, "redirect": False, "hsts": False}
            try:
                chain = [_self_signed(key, names)]
                _install_pair(config, {**record, "key_type": key_type}, key_id, chain, self_signed=True)
            except BaseException:
                fsutil.remove(_key_path(config, name, key_id))
                raise
        else:
            old_pending = record.get("pending")
            if old_pending and old_pending != record.get("key_id"):
                fsutil.remove(_key_path(config, name, old_pending))
            _save_record(config, {**record, "pending": key_id, "pending_type": key_type})
    subject = _subject(names)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(subject)
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                          critical=not subject)
           .sign(key, hashes.SHA256()))
    return {"name": name, "names": names, "key_type": key_type,
            "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii")}


def _subject(names: list[str]) -> x509.Name:
    """A CSR's or self-signed certificate's subject: CN the first name that fits the 64 characters X.509
    allows a common name, or empty when none does (a domain may have up to 253; the names that count
    are the subjectAltName's, which is then critical, RFC 5280 §4.2.1.6)."""
    fitting = next((n for n in names if len(n) <= CN_MAX), None)
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fitting)] if fitting else [])


def _self_signed(key, names: list[str]) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    subject = _subject(names)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=not subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def _parse_pem_list(value: object, field: str, required: bool) -> list[x509.Certificate]:
    if value in (None, "") and not required:
        return []
    if not isinstance(value, str):
        raise v.ValidationError(field, "must be a string of PEM certificates")
    if len(value) > MAX_PEM:
        raise v.ValidationError(field, f"longer than {MAX_PEM} characters")
    if not _PEM_TEXT.fullmatch(value):
        raise v.ValidationError(field, "may hold only the printable ASCII of PEM text and line breaks")
    try:
        certs = x509.load_pem_x509_certificates(value.encode("ascii"))
    except ValueError:
        raise v.ValidationError(field, "is not PEM certificates (-----BEGIN CERTIFICATE-----)") from None
    for index, cert in enumerate(certs):
        # The parser is lazy: a key of an algorithm this node cannot use, or extensions that do not
        # parse, surface only when read, so each certificate is read here, where the field is known.
        try:
            cert.public_key()
            _dns_names(cert)
            cert.not_valid_after_utc, cert.not_valid_before_utc  # noqa: B018
        except (UnsupportedAlgorithm, ValueError, TypeError, x509.DuplicateExtension,
                x509.UnsupportedGeneralNameType) as exc:
            raise v.ValidationError(field, f"certificate {index + 1} cannot be used here: "
                                           f"{type(exc).__name__}: {str(exc)[:200]}") from None
    return certs


def covers(cert_names: list[str], host: str) -> bool:
    """True when one of a certificate's DNS names covers host (a wildcard covers one label)."""
    for pattern in cert_names:
        pattern = pattern.lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host and host.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        return []


def check_chain(config, record: dict, names: list[str], certs: list[x509.Certificate],
                now: dt.datetime | None = None) -> str:
    """Refuse a chain this node cannot serve for these names, naming the field; the id of the key
    (current or pending) the leaf certifies."""
    now = now or dt.datetime.now(dt.UTC)
    leaf = certs[0]
    leaf_key = _key_id(leaf.public_key())
    held = {k for k in (record.get("key_id"), record.get("pending")) if k}
    if leaf_key not in held:
        raise v.ValidationError("certificate", "its public key does not match the key this node made for "
                                f"{record['name']} (ask the node for a new CSR)")
    # The key id is a digest prefix: compare the whole public keys before trusting the match.
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = _load_key(config, record["name"], leaf_key).public_key()
    if mine.public_bytes(serialization.Encoding.DER, pub) != leaf.public_key().public_bytes(
            serialization.Encoding.DER, pub):
        raise v.ValidationError("certificate", "its public key does not match the key this node holds")
    missing = [n for n in names if not covers(_dns_names(leaf), n)]
    if missing:
        raise v.ValidationError("certificate", f"does not cover {', '.join(missing)}")
    if leaf.not_valid_after_utc <= now:
        raise v.ValidationError("certificate", f"expired on {leaf.not_valid_after_utc.isoformat()}")
    if leaf.not_valid_before_utc > now + dt.timedelta(minutes=5):
        raise v.ValidationError("certificate", f"not valid before {leaf.not_valid_before_utc.isoformat()}")
    for index, (cert, issuer) in enumerate(zip(certs, certs[1:], strict=False)):
        try:
            cert.verify_directly_issued_by(issuer)
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError) as exc:
            field = "certificate" if index == 0 else "chain"
            raise v.ValidationError(field, f"certificate {index + 1} of the chain is not issued by the next "
                                           f"one ({type(exc).__name__}); send leaf first, then each issuer") from None
    return leaf_key


def install(config, name: str, data: object) -> dict:
    """Install a certificate (and its chain) for a domain, for the key this node made; nginx -t before
    the reload, the old files back when it refuses."""
    data = v.object_fields(data, "body", INSTALL_FIELDS)
    certs = _parse_pem_list(data.get("certificate"), "certificate", required=True)
    certs += _parse_pem_list(data.get("chain"), "chain", required=False)
    with apply.OP_LOCK:
        domain = web.get(config, name)
        record = _record(config, name)
        if record is None:
            raise v.ValidationError("certificate", f"this node has made no key for {name} (ask it for a CSR)")
        key_id = check_chain(config, record, [domain["name"], *domain["aliases"]], certs)
        key_type = record.get("pending_type") if key_id == record.get("pending") else record.get("key_type")
        _install_pair(config, {**record, "key_type": key_type}, key_id, certs, self_signed=False)
    return get(config, name)


def _install_pair(config, record: dict, key_id: str, certs: list[x509.Certificate], self_signed: bool) -> None:
    """Write the chain, render every vhost with it, check, reload; then drop the keys no longer used."""
    name = record["name"]
    old_keys = {record.get("key_id"), record.get("pending")} - {None, key_id}
    new = {k: val for k, val in record.items() if k not in ("pending", "pending_type")}
    if record.get("pending") and record["pending"] != key_id:
        new.update(pending=record["pending"], pending_type=record.get("pending_type"))
        old_keys.discard(record["pending"])
    new.update(key_id=key_id, self_signed=self_signed, names=_dns_names(certs[0]),
               not_after=certs[0].not_valid_after_utc.isoformat())
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    _ensure_key_dir(config)
    settings = web.tls_settings(config)
    settings[name] = web.tls_entry(config, new)
    web.apply_domains(config, web.list_domains(config), tls=settings, extra={web.cert_path(config, name): pem})
    _save_record(config, new)
    for old in old_keys:
        fsutil.remove(_key_path(config, name, old))


def _parse_key(value: object):
    """A customer's private key (PEM, unencrypted, ECDSA or RSA); refused naming `key`, never echoed."""
    if not isinstance(value, str) or not value:
        raise v.ValidationError("key", "must be a PEM private key (-----BEGIN PRIVATE KEY-----)")
    if len(value) > MAX_PEM:
        raise v.ValidationError("key", f"longer than {MAX_PEM} characters")
    if _PEM_ENCRYPTED.search(value):
        raise v.ValidationError("key", "is protected by a passphrase: send it without one "
                                       "(openssl pkey -in key.pem -out plain.pem)")
    if not _PEM_TEXT.fullmatch(value) or not _PEM_KEY.search(value):
        raise v.ValidationError("key", "must be a PEM private key (-----BEGIN PRIVATE KEY-----)")
    try:
        key = serialization.load_pem_private_key(value.encode("ascii"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise v.ValidationError("key", "is not an unencrypted PEM private key this node can read") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise v.ValidationError("key", "must be an ECDSA or RSA key")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < RSA_BITS:
        raise v.ValidationError("key", f"an RSA key needs at least {RSA_BITS} bits")
    return key


def upload(config, name: str, data: object) -> dict:
    """Install a certificate, its chain and its private key the customer brought: the key is checked
    against the certificate here and kept here like a key this node made (0600)."""
    data = v.object_fields(data, "body", UPLOAD_FIELDS)
    certs = _parse_pem_list(data.get("certificate"), "certificate", required=True)
    certs += _parse_pem_list(data.get("chain"), "chain", required=False)
    key = _parse_key(data.get("key"))
    key_id = _key_id(key.public_key())
    if key_id != _key_id(certs[0].public_key()):
        raise v.ValidationError("key", "does not match the certificate's public key")
    with apply.OP_LOCK:
        domain = web.get(config, name)
        record = _record(config, name) or {"name": name, "redirect": False, "hsts": False}
        held = key_id in (record.get("key_id"), record.get("pending"))
        if not held:
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            _ensure_key_dir(config)
            fsutil.atomic_write(_key_path(config, name, key_id), pem, 0o600)
        key_type = "ecdsa" if isinstance(key, ec.EllipticCurvePrivateKey) else "rsa"
        dropped = record.get("pending") if record.get("pending") not in (None, key_id, record.get("key_id")) else None
        # The uploaded key takes the pending place for the checks; a key this node had pending is dropped.
        staged = {**record, "pending": key_id, "pending_type": key_type}
        try:
            check_chain(config, staged, [domain["name"], *domain["aliases"]], certs)
            _install_pair(config, {**staged, "key_type": key_type}, key_id, certs, self_signed=False)
        except BaseException:
            if not held:
                fsutil.remove(_key_path(config, name, key_id))
            raise
        if dropped:
            fsutil.remove(_key_path(config, name, dropped))
    return get(config, name)


def revert_to_self_signed(config, name: str) -> dict:
    """Replace a domain's certificate by a self-signed one for a new key made here (the site keeps
    answering on 443); the old key is removed once the new pair is served."""
    with apply.OP_LOCK:
        domain = web.get(config, name)
        names = [domain["name"], *domain["aliases"]]
        record = _record(config, name) or {"name": name, "redirect": False, "hsts": False}
        key = ec.generate_private_key(ec.SECP256R1())
        key_id = _key_id(key.public_key())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _ensure_key_dir(config)
        fsutil.atomic_write(_key_path(config, name, key_id), pem, 0o600)
        old_pending = record.get("pending")
        try:
            _install_pair(config, {**record, "pending": None, "key_type": "ecdsa"}, key_id, [_self_signed(key, names)],
                          self_signed=True)
        except BaseException:
            fsutil.remove(_key_path(config, name, key_id))
            raise
        if old_pending and old_pending != key_id:
            fsutil.remove(_key_path(config, name, old_pending))
    return get(config, name)


def update_settings(config, name: str, data: object) -> dict:
    """Switch "redirect HTTP to HTTPS" and HSTS for a domain (both wait for a CA's certificate)."""
    data = v.object_fields(data, "body", SETTINGS_FIELDS)
    with apply.OP_LOCK:
        get(config, name)
        record = _record(config, name)
        new = dict(record)
        for key in SETTINGS_FIELDS:
            if key in data:
                new[key] = v.boolean(data[key], key)
        settings = web.tls_settings(config)
        settings[name] = web.tls_entry(config, new)
        web.apply_domains(config, web.list_domains(config), tls=settings)
        _save_record(config, new)
    return get(config, name)


def _token(value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise v.ValidationError("token", "must be 16 to 128 base64url characters (A-Z a-z 0-9 - _)")
    return value


def publish_challenge(config, token: str, data: object) -> dict:
    """Serve an HTTP-01 key authorization at /.well-known/acme-challenge/<token> on port 80."""
    token = _token(token)
    data = v.object_fields(data, "body", ("key_authorization",))
    value = data.get("key_authorization")
    if not isinstance(value, str) or "." not in value or value.split(".", 1)[0] != token \
            or not _THUMBPRINT.fullmatch(value.split(".", 1)[1]):
        raise v.ValidationError("key_authorization", "must be <token>.<base64url SHA-256 thumbprint>")
    folder = apply.under_root(config, CHALLENGE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    fsutil.atomic_write(folder / token, value.encode("ascii"), 0o644)
    return {"token": token}


def remove_challenge(config, token: str) -> None:
    """Stop serving an HTTP-01 token (gone already: nothing to do)."""
    fsutil.remove(apply.under_root(config, CHALLENGE_DIR) / _token(token))
