"""The web node's side of uploads and of going back to self-signed: a customer's key is checked against
its certificate here and kept here 0600; every refusal names its field and writes nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.ops import certs, web
from agent.tests.ops_helpers import config_digest, make_app, make_config, require_binary
from agent.validation import ValidationError
from tests.certs.test_agent_certs import HOSTILE
from tests.certs.test_certificates_api import own_pair

DOMAIN = "example.com"
ALIAS = "www.example.com"


@pytest.fixture
def node(tmp_path):
    """A web node (private root) serving DOMAIN and ALIAS; nginx -t checks every change."""
    require_binary("nginx")
    config, _reloads = make_config(tmp_path)
    web.create(config, {"name": DOMAIN, "owner": "alice", "aliases": [ALIAS]})
    return config


def tls_files(config) -> dict[str, bytes]:
    folder = web.tls_dir(config)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_upload_installs_the_pair_and_keeps_the_key_here(node):
    """With no certificate before, the pair is served; the key file is the customer's key, 0600, and the
    answer carries no key; a second upload replaces the first and removes its key."""
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    answer = certs.upload(node, DOMAIN, {"certificate": cert_pem, "key": key_pem})
    assert answer["self_signed"] is False and "BEGIN" not in str(answer)
    (key_file,) = web.tls_dir(node).glob("*.key")
    assert key_file.read_text() == key_pem and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    web.nginx_test(node)
    key2, cert2 = own_pair([DOMAIN, ALIAS])
    certs.upload(node, DOMAIN, {"certificate": cert2, "key": key2})
    (key_file2,) = web.tls_dir(node).glob("*.key")
    assert key_file2.read_text() == key2


def test_upload_over_a_pending_key_drops_it(node):
    """A key the node made for a CSR (pending over a self-signed pair) is removed when the customer's
    own pair is installed instead."""
    certs.make_key(node, DOMAIN, {})
    certs.make_key(node, DOMAIN, {})  # now a self-signed pair plus a pending key
    assert len(list(web.tls_dir(node).glob("*.key"))) == 2
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    certs.upload(node, DOMAIN, {"certificate": cert_pem, "key": key_pem})
    assert [p.read_text() for p in web.tls_dir(node).glob("*.key")] == [key_pem]
    assert certs.get(node, DOMAIN)["pending"] is None


@pytest.mark.parametrize(("case", "field"), [
    ("other key", "key"), ("rsa 1024", "key"), ("encrypted", "key"), ("not covering", "certificate"),
    ("expired", "certificate"), ("key as certificate", "certificate"),
])
def test_upload_refusals_write_nothing(node, case, field):
    """Each refusal names its field; the node's TLS files are as they were."""
    certs.make_key(node, DOMAIN, {})
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    bodies = {
        "other key": {"certificate": cert_pem, "key": own_pair([DOMAIN])[0]},
        "rsa 1024": {"certificate": cert_pem, "key": weak.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()},
        "encrypted": {"certificate": cert_pem, "key": serialization.load_pem_private_key(
            key_pem.encode(), None).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.BestAvailableEncryption(b"secret")).decode()},
        "not covering": dict(zip(("key", "certificate"), own_pair([DOMAIN]), strict=True)),
        "expired": dict(zip(("key", "certificate"), own_pair([DOMAIN, ALIAS], days=-1), strict=True)),
        "key as certificate": {"certificate": key_pem, "key": key_pem},
    }
    before = tls_files(node)
    with pytest.raises(ValidationError) as refused:
        certs.upload(node, DOMAIN, bodies[case])
    assert refused.value.field == field, refused.value
    assert tls_files(node) == before


@pytest.mark.parametrize("private_format", ["PKCS8", "TraditionalOpenSSL"])
def test_an_encrypted_key_is_refused_saying_to_remove_its_passphrase(node, private_format):
    """A key with a passphrase (PKCS#8 or OpenSSL's own form) is refused naming `key` and saying what to do."""
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    locked = serialization.load_pem_private_key(key_pem.encode(), None).private_bytes(
        serialization.Encoding.PEM, getattr(serialization.PrivateFormat, private_format),
        serialization.BestAvailableEncryption(b"secret")).decode()
    with pytest.raises(ValidationError) as refused:
        certs.upload(node, DOMAIN, {"certificate": cert_pem, "key": locked})
    assert refused.value.field == "key" and "passphrase" in str(refused.value), refused.value


def test_revert_serves_a_self_signed_pair_for_a_new_key(node):
    """After an upload, revert makes a new key here and serves a self-signed certificate for it; the
    customer's key is removed; the switches are kept but not rendered."""
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    certs.upload(node, DOMAIN, {"certificate": cert_pem, "key": key_pem})
    certs.update_settings(node, DOMAIN, {"redirect": True})
    state = certs.revert_to_self_signed(node, DOMAIN)
    assert state["self_signed"] is True and state["redirect"] is True
    (key_file,) = web.tls_dir(node).glob("*.key")
    assert key_file.read_text() != key_pem
    leaf = x509.load_pem_x509_certificates(web.cert_path(node, DOMAIN).read_bytes())[0]
    assert leaf.issuer == leaf.subject
    assert "return 301" not in "".join(p.read_text() for p in (Path(node.root) / "etc/nginx").rglob("*.conf"))
    web.nginx_test(node)


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """The real agent app with DOMAIN."""
    require_binary("nginx")
    config, _reloads, client = make_app(tmp_path_factory.mktemp("tls-upload-hostile"))
    client.request("POST", "/v1/webdomains", {"name": DOMAIN, "owner": "alice"})
    return config, client


@pytest.mark.parametrize("field", ["certificate", "chain", "key"])
def test_hostile_values_in_upload_fields(routed, field):
    """Every value of the shared hostile corpus in each upload field, through the real route: a 4xx
    naming the field (a chain may be refused on the leaf), nothing written."""
    config, client = routed
    key_pem, cert_pem = own_pair([DOMAIN])
    before = config_digest(config)
    for value in HOSTILE:
        body = {"certificate": cert_pem, "key": key_pem, field: value}
        response = client.request("PUT", f"/v1/webdomains/{DOMAIN}/tls/uploaded", body)
        if field == "chain" and value in (None, ""):
            before = config_digest(config)  # no chain: the pair is installed, as it should be
            continue
        assert 400 <= response.status_code < 500, (field, value, response.status_code)
        assert field in response.json["fields"] or (field == "chain" and "certificate" in response.json["fields"]), \
            (field, value, response.json)
        assert config_digest(config) == before, (field, value)
