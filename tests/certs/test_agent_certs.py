"""The web node's TLS operations: the key made and kept on the node (0600, never answered), certificates
checked against it before nginx sees them, the 443 server block nginx -t accepts, HTTP-01 tokens."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from agent.ops import apply, certs, web
from agent.tests.ops_helpers import config_digest, make_app, make_config, require_binary
from agent.validation import ValidationError

DOMAIN = "example.com"
ALIAS = "www.example.com"
CORPUS = json.loads((Path(__file__).resolve().parents[2] / "agent/tests/hostile_corpus.json").read_text())
HOSTILE = [item["repeat"][0] * item["repeat"][1] if "repeat" in item else item["value"]
           for item in CORPUS["values"]]


@pytest.fixture
def node(tmp_path):
    """A web node (private root) serving DOMAIN and ALIAS; nginx -t checks every change."""
    require_binary("nginx")
    config, reloads = make_config(tmp_path)
    web.create(config, {"name": DOMAIN, "owner": "alice", "aliases": [ALIAS]})
    return config, reloads


class LocalCA:
    """A throwaway CA that signs certificates for any public key (what a real CA does with a CSR)."""

    def __init__(self, name: str = "Test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def sign(self, csr_pem: str | None = None, *, public_key=None, names=(DOMAIN, ALIAS),
             days: tuple[int, int] = (-1, 90)) -> str:
        """A leaf for the CSR's key (or public_key), these names, valid from/to these days from now (PEM)."""
        if csr_pem is not None:
            public_key = x509.load_pem_x509_csr(csr_pem.encode()).public_key()
        now = dt.datetime.now(dt.UTC)
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.cert.subject).public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now + dt.timedelta(days=days[0])).not_valid_after(now + dt.timedelta(days=days[1]))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return leaf.public_bytes(serialization.Encoding.PEM).decode()

    def pem(self) -> str:
        """The CA's own certificate (the chain to send after the leaf)."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def key_files(config) -> list[Path]:
    """The private keys the node holds."""
    return sorted((Path(config.state_dir) / "tls").glob("*.key"))


def vhost_text(config) -> str:
    """DOMAIN's rendered server blocks."""
    return (Path(config.root) / web.VHOST_DIR / "alice" / f"{DOMAIN}.conf").read_text()


def test_key_stays_on_the_node_and_the_answer_is_the_csr(tmp_path):
    """Through the real route: the answer carries the CSR (for both names) and not one byte of the key;
    the key is 0600 (root's) in a 0700 folder, and it is the key the CSR was signed with."""
    require_binary("nginx")
    config, _reloads, client = make_app(tmp_path)
    assert client.request("POST", "/v1/webdomains", {"name": DOMAIN, "owner": "alice",
                                                     "aliases": [ALIAS]}).status_code == 201
    response = client.request("POST", f"/v1/webdomains/{DOMAIN}/tls/key", {})
    assert response.status_code == 201, response.json
    [key_file] = key_files(config)
    key_pem = key_file.read_bytes()
    body = response.get_data()
    key_body = b"".join(key_pem.splitlines()[1:-1])
    assert b"PRIVATE" not in body and key_body not in body.replace(b"\\n", b"")
    for chunk in key_pem.splitlines()[1:-1]:
        assert chunk not in body
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert key_file.stat().st_uid == Path(config.state_dir).stat().st_uid
    csr = x509.load_pem_x509_csr(response.json["csr"].encode())
    assert csr.is_signature_valid
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == [DOMAIN, ALIAS]
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    shown = client.request("GET", f"/v1/webdomains/{DOMAIN}/tls")
    assert shown.status_code == 200 and b"PRIVATE" not in shown.get_data()
    assert "key_id" not in shown.json and shown.json["self_signed"] is True


def test_rsa_option_and_the_self_signed_default(node):
    """key_type rsa makes an RSA 2048 key; with no certificate yet a self-signed one for it is served on
    443 at once, and nginx -t accepts the whole tree."""
    config, reloads = node
    answer = certs.make_key(config, DOMAIN, {"key_type": "rsa"})
    [key_file] = key_files(config)
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    served = x509.load_pem_x509_certificates((Path(config.state_dir) / "tls" / f"{DOMAIN}.crt").read_bytes())
    assert served[0].issuer == served[0].subject
    assert served[0].public_key().public_numbers() == key.public_key().public_numbers()
    assert answer["names"] == [DOMAIN, ALIAS]
    text = vhost_text(config)
    assert "listen 443 ssl http2;" in text and str(key_file) in text and "TLSv1.2 TLSv1.3" in text
    include = (Path(config.root) / web.INCLUDE).read_text()
    default_443 = include[include.index("listen 443 ssl default_server;"):]
    assert "ssl_reject_handshake on;" in default_443 and "return 444;" in default_443.split("}")[0]
    web.nginx_test(config)
    assert reloads.calls()[-1] == "nginx"


def test_unknown_key_type_and_domain_are_refused(node):
    """A key type not offered names key_type; a domain not on the node is 404; nothing written."""
    config, _ = node
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        certs.make_key(config, DOMAIN, {"key_type": "dsa"})
    assert caught.value.field == "key_type"
    with pytest.raises(apply.NotFound):
        certs.make_key(config, "other.example.com", {})
    assert config_digest(config) == before


def test_certificate_for_another_key_is_refused_naming_the_field(node):
    """A certificate whose public key is not the node's is refused (certificate), nothing changes."""
    config, reloads = node
    certs.make_key(config, DOMAIN, {})
    before, calls = config_digest(config), reloads.calls()
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    ca = LocalCA()
    with pytest.raises(ValidationError) as caught:
        certs.install(config, DOMAIN, {"certificate": ca.sign(public_key=stranger), "chain": ca.pem()})
    assert caught.value.field == "certificate" and "does not match the key" in caught.value.message
    assert config_digest(config) == before and reloads.calls() == calls


@pytest.mark.parametrize(("shape", "field", "words"), [
    ("alias missing", "certificate", f"does not cover {ALIAS}"),
    ("expired", "certificate", "expired on"),
    ("not yet valid", "certificate", "not valid before"),
    ("chain out of order", "certificate", "not issued by the next"),
    ("not pem", "certificate", "not PEM"),
    ("chain not pem", "chain", "not PEM"),
    ("control character", "certificate", "printable ASCII"),
])
def test_bad_certificates_are_refused(node, shape, field, words):
    """Each fault of an uploaded chain is named with its field; nothing is written."""
    config, _ = node
    csr = certs.make_key(config, DOMAIN, {})["csr"]
    ca = LocalCA()
    body = {"certificate": ca.sign(csr), "chain": ca.pem()}
    if shape == "alias missing":
        body["certificate"] = ca.sign(csr, names=(DOMAIN,))
    elif shape == "expired":
        body["certificate"] = ca.sign(csr, days=(-90, -1))
    elif shape == "not yet valid":
        body["certificate"] = ca.sign(csr, days=(2, 90))
    elif shape == "chain out of order":
        body["chain"] = LocalCA("Another CA").pem()
    elif shape == "not pem":
        body["certificate"] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    elif shape == "chain not pem":
        body["chain"] = "hello"
    elif shape == "control character":
        body["certificate"] = body["certificate"] + "\x00"
    before = config_digest(config)
    with pytest.raises(ValidationError) as caught:
        certs.install(config, DOMAIN, body)
    assert caught.value.field == field and words in caught.value.message, caught.value.message
    assert config_digest(config) == before


def test_renewal_keeps_the_old_pair_until_the_new_one_is_installed(node):
    """A second key waits (pending) while the vhost keeps the first; installing a certificate for it
    switches the vhost and removes the first key; a late certificate for the old key is refused."""
    config, _ = node
    ca = LocalCA()
    first_csr = certs.make_key(config, DOMAIN, {})["csr"]
    certs.install(config, DOMAIN, {"certificate": ca.sign(first_csr), "chain": ca.pem()})
    [first_key] = key_files(config)
    second_csr = certs.make_key(config, DOMAIN, {})["csr"]
    assert len(key_files(config)) == 2 and str(first_key) in vhost_text(config)
    assert certs.get(config, DOMAIN)["pending"]
    state = certs.install(config, DOMAIN, {"certificate": ca.sign(second_csr), "chain": ca.pem()})
    [second_key] = key_files(config)
    assert second_key != first_key and str(second_key) in vhost_text(config)
    assert state["pending"] is None and state["self_signed"] is False
    with pytest.raises(ValidationError) as caught:
        certs.install(config, DOMAIN, {"certificate": ca.sign(first_csr), "chain": ca.pem()})
    assert caught.value.field == "certificate"
    web.nginx_test(config)


def test_redirect_and_hsts_switches_keep_the_acme_path(node):
    """With a CA's certificate, redirect and HSTS are rendered (the ACME path on port 80 is still
    answered, before the redirect); with a self-signed one they wait. nginx -t accepts both."""
    config, _ = node
    csr = certs.make_key(config, DOMAIN, {})["csr"]
    certs.update_settings(config, DOMAIN, {"redirect": True, "hsts": True})
    assert "return 301" not in vhost_text(config) and "Strict-Transport-Security" not in vhost_text(config)
    ca = LocalCA()
    certs.install(config, DOMAIN, {"certificate": ca.sign(csr), "chain": ca.pem()})
    text = vhost_text(config)
    port80 = text.split("listen 443")[0]
    assert port80.index("/.well-known/acme-challenge/") < port80.index("return 301 https://$host$request_uri;")
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in text
    web.nginx_test(config)
    state = certs.update_settings(config, DOMAIN, {"redirect": False})
    assert state["redirect"] is False and state["hsts"] is True
    assert "return 301" not in vhost_text(config)
    with pytest.raises(ValidationError) as caught:
        certs.update_settings(config, DOMAIN, {"hsts": "yes"})
    assert caught.value.field == "hsts"


def test_refused_nginx_check_puts_the_old_files_back(node):
    """A tree nginx -t refuses (nginx.conf broken by hand): the install is undone, the site keeps its
    self-signed pair, the record is unchanged, nothing is reloaded."""
    config, reloads = node
    csr = certs.make_key(config, DOMAIN, {})["csr"]
    with open(Path(config.root) / web.NGINX_CONF, "a") as conf:
        conf.write("this_is_not_a_directive;\n")
    before, calls, state = config_digest(config), reloads.calls(), certs.get(config, DOMAIN)
    ca = LocalCA()
    with pytest.raises(apply.CheckFailed) as caught:
        certs.install(config, DOMAIN, {"certificate": ca.sign(csr), "chain": ca.pem()})
    assert "this_is_not_a_directive" in caught.value.message
    assert config_digest(config) == before and reloads.calls() == calls
    assert certs.get(config, DOMAIN) == state


def test_challenge_tokens(node):
    """A token is served from a folder nginx reads (root's, 0755, the file 0644) and withdrawn; a token or
    key authorization outside base64url is refused naming its field, nothing written."""
    config, _ = node
    token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
    keyauth = f"{token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
    assert certs.publish_challenge(config, token, {"key_authorization": keyauth}) == {"token": token}
    folder = apply.under_root(config, web.CHALLENGE_DIR)
    assert (folder / token).read_text() == keyauth
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755 and stat.S_IMODE((folder / token).stat().st_mode) == 0o644
    assert f'alias "{folder}/";' in vhost_text(config)
    before = config_digest(config)
    for bad in ("../../etc/passwd", "a/b" * 10, "short", "x" * 129, "tok.en" * 4, "ä" * 20):
        with pytest.raises(ValidationError) as caught:
            certs.publish_challenge(config, bad, {"key_authorization": keyauth})
        assert caught.value.field == "token"
    for bad in (f"{token}.short", f"other{token}.{'a' * 43}", f"{token}.{'a' * 42}/", 43, None):
        with pytest.raises(ValidationError) as caught:
            certs.publish_challenge(config, token, {"key_authorization": bad})
        assert caught.value.field == "key_authorization"
    assert config_digest(config) == before
    certs.remove_challenge(config, token)
    assert not (folder / token).exists()


def test_deleting_the_domain_removes_its_keys(node):
    """A domain deleted takes its keys, certificate and record with it."""
    config, _ = node
    certs.make_key(config, DOMAIN, {})
    certs.make_key(config, DOMAIN, {})
    assert len(key_files(config)) == 2
    web.delete(config, DOMAIN)
    assert key_files(config) == [] and not (Path(config.state_dir) / "tls" / f"{DOMAIN}.crt").exists()
    with pytest.raises(apply.NotFound):
        certs.get(config, DOMAIN)


FIELD_CASES = {
    "key_type": lambda value: ("POST", f"/v1/webdomains/{DOMAIN}/tls/key", {"key_type": value}),
    "wildcard": lambda value: ("POST", f"/v1/webdomains/{DOMAIN}/tls/key", {"wildcard": value}),
    "certificate": lambda value: ("PUT", f"/v1/webdomains/{DOMAIN}/tls/certificate", {"certificate": value}),
    "chain": lambda value: ("PUT", f"/v1/webdomains/{DOMAIN}/tls/certificate",
                            {"certificate": LocalCA().pem(), "chain": value}),
    "redirect": lambda value: ("PUT", f"/v1/webdomains/{DOMAIN}/tls", {"redirect": value}),
    "hsts": lambda value: ("PUT", f"/v1/webdomains/{DOMAIN}/tls", {"hsts": value}),
    "key_authorization": lambda value: ("PUT", "/v1/acme-challenges/" + "A" * 43, {"key_authorization": value}),
}


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """The real agent app with DOMAIN and a key made."""
    require_binary("nginx")
    config, _reloads, client = make_app(tmp_path_factory.mktemp("tls-hostile"))
    client.request("POST", "/v1/webdomains", {"name": DOMAIN, "owner": "alice"})
    assert client.request("POST", f"/v1/webdomains/{DOMAIN}/tls/key", {}).status_code == 201
    return config, client


@pytest.mark.parametrize("field", FIELD_CASES, ids=list(FIELD_CASES))
def test_hostile_values_are_refused_naming_the_field(routed, field):
    """Every value of the shared hostile corpus in each new field: a 4xx naming it, nothing written
    (the two switches accept booleans, the CA's own certificate is no certificate for the key)."""
    config, client = routed
    before = config_digest(config)
    for value in HOSTILE:
        method, path, body = FIELD_CASES[field](value)
        response = client.request(method, path, body)
        if field in ("redirect", "hsts", "wildcard") and isinstance(value, bool) and response.status_code < 300:
            before = config_digest(config)
            continue
        assert 400 <= response.status_code < 500, (field, value, response.status_code)
        expected = "certificate" if field == "chain" and response.json["fields"].get("certificate") else field
        assert expected in response.json["fields"], (field, value, response.json)
        assert config_digest(config) == before, (field, value)


def test_hostile_tokens_in_the_path_are_refused(routed):
    """A token in the URL that is not base64url is refused (400 token or no route), nothing written."""
    config, client = routed
    before = config_digest(config)
    for token in ("..", "%2e%2e", "a%2fb" + "c" * 20, "x" * 200, "ab;cd" * 5, "%00" * 10):
        response = client.request("PUT", f"/v1/acme-challenges/{token}", {"key_authorization": "x"})
        assert response.status_code in (400, 404, 405), (token, response.status_code)
        if response.status_code == 400:
            assert "token" in response.json["fields"]
    assert config_digest(config) == before


LONG = "www." + "l" * 60 + ".example.com"  # 76 characters: a valid name, longer than a CN may be


@pytest.mark.parametrize("aliases", [[], ["short.example.com"]], ids=["no-short-name", "short-alias"])
def test_a_domain_longer_than_a_common_name_gets_its_key_and_csr(tmp_path, aliases):
    """X.509 caps a common name at 64 characters, a domain name has up to 253: a customer's long domain
    gets its key, self-signed certificate and CSR (every name in the subjectAltName, the CN a name that
    fits or none), not a 500 with a key left behind."""
    require_binary("nginx")
    config, _reloads, client = make_app(tmp_path)
    assert client.request("POST", "/v1/webdomains", {"name": LONG, "owner": "alice",
                                                     "aliases": aliases}).status_code == 201
    for body in ({}, {"wildcard": True}):
        response = client.request("POST", f"/v1/webdomains/{LONG}/tls/key", body)
        assert response.status_code == 201, response.get_json()
        csr = x509.load_pem_x509_csr(response.json["csr"].encode())
        assert csr.is_signature_valid
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert LONG in san.value.get_values_for_type(x509.DNSName)
        common = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        assert common == aliases[:1]
        assert san.critical is (not aliases)
    shown = client.request("GET", f"/v1/webdomains/{LONG}/tls")
    assert shown.status_code == 200 and shown.json["self_signed"] is True
    assert LONG in shown.json["names"]
    assert len(key_files(config)) == 2  # the installed self-signed pair's and the pending one
    served = (Path(config.root) / web.VHOST_DIR / "alice" / f"{LONG}.conf").read_text()
    assert "listen 443 ssl" in served


def _unusable(pem: str, old: bytes, new: bytes) -> str:
    """pem with one run of DER bytes replaced (the parser is lazy: it loads, and fails when read)."""
    import base64

    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert der.count(old) == 1
    body = base64.b64encode(der.replace(old, new)).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----", ""])


EC_PUBLIC_KEY_OID = bytes.fromhex("06072A8648CE3D0201")  # id-ecPublicKey
UNKNOWN_KEY_OID = bytes.fromhex("06072A8648CE3D0209")
SAN_OID = bytes.fromhex("0603551D11")  # subjectAltName
BASIC_CONSTRAINTS_OID = bytes.fromhex("0603551D13")


def test_certificates_that_load_but_cannot_be_read_are_refused_naming_the_field(node):
    """A leaf or chain certificate with a public key of an unknown algorithm, or a leaf for the node's own
    key whose extensions repeat, is a 400 naming its field, not a 500; nothing is written."""
    config, _ = node
    csr = certs.make_key(config, DOMAIN, {})["csr"]
    ca = LocalCA()
    before = config_digest(config)
    unknown_key_leaf = _unusable(ca.sign(public_key=ec.generate_private_key(ec.SECP256R1()).public_key()),
                                 EC_PUBLIC_KEY_OID, UNKNOWN_KEY_OID)
    unknown_key_ca = _unusable(ca.pem(), EC_PUBLIC_KEY_OID, UNKNOWN_KEY_OID)
    # The leaf's basicConstraints renamed subjectAltName: two SAN extensions, for the node's real key.
    leaf = x509.load_pem_x509_certificate(ca.sign(csr).encode())
    with_constraints = (x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.issuer)
                        .public_key(leaf.public_key()).serial_number(leaf.serial_number)
                        .not_valid_before(leaf.not_valid_before_utc).not_valid_after(leaf.not_valid_after_utc)
                        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN), x509.DNSName(ALIAS)]),
                                       critical=False)
                        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
                        .sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    twice_san = _unusable(with_constraints, BASIC_CONSTRAINTS_OID, SAN_OID)
    for body, field in (({"certificate": unknown_key_leaf}, "certificate"),
                        ({"certificate": ca.sign(csr), "chain": unknown_key_ca}, "chain"),
                        ({"certificate": twice_san}, "certificate")):
        with pytest.raises(ValidationError) as caught:
            certs.install(config, DOMAIN, body)
        assert caught.value.field == field, (field, caught.value.message)
        assert config_digest(config) == before
    assert certs.get(config, DOMAIN)["self_signed"] is True


def _name_of(length: int) -> str:
    """A valid domain name of exactly length characters (labels of at most 63)."""
    labels, left = [], length - len(".example")
    while left > 0:
        take = min(63, left if left <= 63 else left - 2)
        labels.append("k" * take)
        left -= take + 1
    name = ".".join(labels) + ".example"
    assert len(name) == length, len(name)
    return name


@pytest.mark.parametrize("length", [234, 235, 240, 241, 253])
def test_key_files_of_the_longest_domains_fit_a_file_name(tmp_path, length):
    """`<stem>.<key id>.key` adds 21 characters to a domain's file stem: a domain of up to 253 characters
    still gets its key (a file name has at most 255 bytes), and deleting the domain takes it away."""
    require_binary("nginx")
    name = _name_of(length)
    config, _reloads, client = make_app(tmp_path)
    assert client.request("POST", "/v1/webdomains", {"name": name, "owner": "alice"}).status_code == 201
    for _ in range(2):
        response = client.request("POST", f"/v1/webdomains/{name}/tls/key", {})
        assert response.status_code == 201, response.get_json()
    assert len(key_files(config)) == 2
    assert all(len(p.name.encode()) <= 255 for p in (Path(config.state_dir) / "tls").iterdir())
    assert client.request("GET", f"/v1/webdomains/{name}/tls").json["self_signed"] is True
    assert client.request("DELETE", f"/v1/webdomains/{name}").status_code == 204
    assert list((Path(config.state_dir) / "tls").iterdir()) == []


def test_a_full_replace_that_drops_a_domain_forgets_its_keys(node):
    """A full replace (`web.replace_all`) without the domain takes its keys, certificate and record with
    it, as a delete does: the same name made again later, for whichever owner, starts with no pair."""
    config, _ = node
    certs.make_key(config, DOMAIN, {})
    certs.make_key(config, DOMAIN, {})
    kept = {"name": "kept.example.org", "owner": "alice"}
    web.create(config, kept)
    certs.make_key(config, "kept.example.org", {})
    assert len(key_files(config)) == 3
    web.replace_all(config, [kept])
    assert [p.name.split(".")[0] for p in key_files(config)] == ["kept"]
    assert not web.cert_path(config, DOMAIN).exists()
    web.create(config, {"name": DOMAIN, "owner": "bob"})
    with pytest.raises(apply.NotFound):
        certs.get(config, DOMAIN)
    assert "listen 443" not in (Path(config.root) / web.VHOST_DIR / "bob" / f"{DOMAIN}.conf").read_text()
