"""The agent's self-signed TLS certificate; the master trusts it by pinned fingerprint."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from pathlib import Path

from agent.config import write_private

VALIDITY = dt.timedelta(days=3650)


def fingerprint(cert_file: str | os.PathLike) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding."""
    der = ssl.PEM_cert_to_DER_cert(Path(cert_file).read_text())
    return hashlib.sha256(der).hexdigest()


def ensure_certificate(
    cert_file: str | os.PathLike,
    key_file: str | os.PathLike,
    hostnames: list[str],
    addresses: list[str],
) -> str:
    """Create a self-signed ECDSA P-256 certificate unless one exists; return its fingerprint."""
    cert_file, key_file = Path(cert_file), Path(key_file)
    if cert_file.exists() and key_file.exists():
        return fingerprint(cert_file)

    # Imported here so the running agent never loads cryptography (it only needs ssl).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names = list(dict.fromkeys([*hostnames, "localhost"]))
    ips = list(dict.fromkeys(ipaddress.ip_address(a) for a in [*addresses, "127.0.0.1"]))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    # Backdated a day for clients that check validity dates and whose clock lags.
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names] + [x509.IPAddress(ip) for ip in ips]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint(cert_file)
