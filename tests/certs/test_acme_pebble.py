"""The ACME client against a real pebble: a CSR made by the agent gets a chain that validates against
pebble's root, through HTTP-01 (served from the agent's challenge folder) and DNS-01 (a TXT record),
with pebble's random delays and nonce rejections; failures name the step and the CA's problem."""

from __future__ import annotations

import datetime as dt
import logging
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store

from agent.ops import apply, certs, web
from agent.tests.ops_helpers import make_config, require_binary
from app.services import acme
from tests.certs import pebble

pytestmark = pytest.mark.skipif(pebble.missing() is not None, reason=str(pebble.missing()))

DOMAIN = "shop.hostfleet-test.net"
ALIAS = "www.shop.hostfleet-test.net"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """pebble with real validation, no delays, and one nonce in three refused."""
    running = pebble.start(tmp_path_factory.mktemp("pebble"), nonce_reject=33)
    yield running
    running.stop()


@pytest.fixture
def node(tmp_path):
    """A web node (private root) serving DOMAIN and its alias; nginx checks every change."""
    require_binary("nginx")
    config, _reloads = make_config(tmp_path)
    web.create(config, {"name": DOMAIN, "owner": "alice", "aliases": [ALIAS]})
    return config


def http_publishers(config) -> acme.Publishers:
    """HTTP-01 through the agent's own challenge operations."""
    return acme.Publishers(
        http_publish=lambda token, keyauth: certs.publish_challenge(config, token, {"key_authorization": keyauth}),
        http_remove=lambda token: certs.remove_challenge(config, token),
    )


def served_by(config, peb: pebble.Pebble) -> pebble.ChallengeResponder:
    """Answer pebble's HTTP-01 requests from the folder nginx serves tokens from."""
    folder = apply.under_root(config, web.CHALLENGE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return pebble.ChallengeResponder(folder, peb.http_port)


def verify_chain(fullchain: str, root_pem: bytes, name: str) -> x509.Certificate:
    """Validate a chain against pebble's root for a name, as a TLS client would; the leaf."""
    chain = x509.load_pem_x509_certificates(fullchain.encode())
    root = x509.load_pem_x509_certificate(root_pem)
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(name))
    verifier.verify(chain[0], chain[1:])
    return chain[0]


def issue_http(config, peb, progress=None, install=True, **kwargs) -> acme.Issued:
    """The whole conversation for DOMAIN's CSR from the node, HTTP-01, installed on the node."""
    csr = certs.make_key(config, DOMAIN, {})["csr"]
    responder = served_by(config, peb)
    try:
        return acme.issue(
            csr, directory_url=peb.directory_url, email="admin@hostfleet-test.net",
            publishers=http_publishers(config), progress=progress, verify=str(peb.listener_ca),
            install=(lambda pem: certs.install(config, DOMAIN, {"certificate": pem})) if install else None,
            **kwargs)
    finally:
        responder.close()


def test_http01_certificate_validates_against_pebble_root(ca, node):
    """The node's CSR becomes a chain pebble's root validates for both names; the node installs it, the
    vhost serves it on 443, and the key stays on the node, 0600."""
    steps = []
    issued = issue_http(node, ca, progress=lambda step, detail: steps.append(step))
    assert steps[:2] == ["account", "order"]
    assert steps.count("authorization") == 2 and steps.count("challenge") == 2
    assert steps[-2:] == ["finalize", "installed"]
    root = ca.root_pem()
    for name in (DOMAIN, ALIAS):
        verify_chain(issued.fullchain_pem, root, name)
    state = certs.get(node, DOMAIN)
    assert state["self_signed"] is False and state["names"] == sorted([DOMAIN, ALIAS]) or \
        set(state["names"]) == {DOMAIN, ALIAS}
    served = (node.state_dir / "tls" / f"{DOMAIN}.crt").read_text()
    assert served.startswith(issued.fullchain_pem.split("-----END CERTIFICATE-----")[0])
    keys = list((node.state_dir / "tls").glob("*.key"))
    assert len(keys) == 1 and stat.S_IMODE(keys[0].stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(keys[0].read_bytes(), None)
    leaf = x509.load_pem_x509_certificates(issued.fullchain_pem.encode())[0]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    web.nginx_test(node)
    # The tokens were withdrawn once the CA had decided.
    assert list(apply.under_root(node, web.CHALLENGE_DIR).iterdir()) == []


def test_openssl_verifies_the_installed_chain(ca, node, tmp_path):
    """`openssl verify` with pebble's root alone accepts the file nginx serves."""
    require_binary("openssl")
    issue_http(node, ca)
    root = tmp_path / "root.pem"
    root.write_bytes(ca.root_pem())
    served = node.state_dir / "tls" / f"{DOMAIN}.crt"
    chain = x509.load_pem_x509_certificates(served.read_bytes())
    untrusted = tmp_path / "untrusted.pem"
    untrusted.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted", str(untrusted),
                           "-verify_hostname", ALIAS, str(leaf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_dns01_wildcard(ca, tmp_path):
    """A wildcard order is answered by DNS-01 through the publishing seam (TXT in the test DNS)."""
    require_binary("nginx")
    config, _ = make_config(tmp_path)
    web.create(config, {"name": "hostfleet-test.org", "owner": "bob"})
    csr = certs.make_key(config, "hostfleet-test.org", {"wildcard": True})["csr"]
    published = []
    publishers = acme.Publishers(
        http_publish=lambda token, keyauth: certs.publish_challenge(config, token, {"key_authorization": keyauth}),
        dns_publish=lambda name, value: (published.append(name), ca.set_txt(name, value)),
        dns_remove=ca.clear_txt)
    responder = served_by(config, ca)
    try:
        issued = acme.issue(csr, directory_url=ca.directory_url, email=None, publishers=publishers,
                            verify=str(ca.listener_ca),
                            install=lambda pem: certs.install(config, "hostfleet-test.org", {"certificate": pem}))
    finally:
        responder.close()
    assert "_acme-challenge.hostfleet-test.org" in published
    verify_chain(issued.fullchain_pem, ca.root_pem(), "anything.hostfleet-test.org")
    web.nginx_test(config)


def test_wildcard_without_dns_publisher_names_the_step(ca, tmp_path):
    """A wildcard with only HTTP-01 available fails at the challenge step, saying dns-01 is needed."""
    require_binary("nginx")
    config, _ = make_config(tmp_path)
    web.create(config, {"name": "hostfleet-test.info", "owner": "bob"})
    csr = certs.make_key(config, "hostfleet-test.info", {"wildcard": True})["csr"]
    responder = served_by(config, ca)
    try:
        with pytest.raises(acme.AcmeError) as caught:
            acme.issue(csr, directory_url=ca.directory_url, email=None, publishers=http_publishers(config),
                       verify=str(ca.listener_ca))
    finally:
        responder.close()
    assert caught.value.step == "challenge" and "dns-01" in caught.value.message


def test_domain_resolving_elsewhere_fails_with_the_cas_problem(ca, node):
    """The name resolving to an address nothing answers on: the challenge step fails, naming the
    address, with pebble's problem document; the site keeps its self-signed certificate."""
    ca.set_a(ALIAS, "127.0.0.2")
    try:
        with pytest.raises(acme.AcmeError) as caught:
            issue_http(node, ca)
    finally:
        ca.clear_a(ALIAS)
    error = caught.value
    assert error.step == "challenge" and error.identifier == ALIAS
    assert error.problem and error.problem["type"].startswith("urn:ietf:params:acme:error:")
    assert "127.0.0.2" in error.message
    assert certs.get(node, DOMAIN)["self_signed"] is True


def test_ca_down_is_retried_then_named(node, tmp_path):
    """No CA listening: each call is retried with growing pauses, then the account step fails."""
    pauses = []
    port = pebble.free_port()
    csr = certs.make_key(node, DOMAIN, {})["csr"]
    with pytest.raises(acme.AcmeError) as caught:
        acme.issue(csr, directory_url=f"https://127.0.0.1:{port}/dir", email=None,
                   publishers=http_publishers(node), sleep=pauses.append)
    assert caught.value.step == "account" and "could not be reached" in caught.value.message
    assert len(pauses) == acme.ATTEMPTS - 1 and pauses == sorted(pauses) and pauses[-1] > pauses[0]
    assert certs.get(node, DOMAIN)["self_signed"] is True


@pytest.mark.slow
def test_with_pebbles_random_delays_and_nonce_rejections(tmp_path, node, caplog):
    """pebble's random validation delays kept on and half the nonces refused: the client still gets a
    certificate (pebble's own test of a client that cannot retry), having retried past the `acme`
    library's single retry at least once."""
    peb = pebble.start(tmp_path / "pebble-slow", sleep=True, nonce_reject=50)
    caplog.set_level(logging.INFO, logger="hostfleet.acme")
    try:
        started = dt.datetime.now()
        issued = issue_http(node, peb)
        verify_chain(issued.fullchain_pem, peb.root_pem(), DOMAIN)
        assert dt.datetime.now() - started < dt.timedelta(seconds=acme.DEADLINE_S)
    finally:
        peb.stop()
    assert any("nonce rejected" in r.getMessage() for r in caplog.records)
