"""/api/v1/certificates end to end: a request runs as an operation that gets the web node's key and CSR,
talks to a real pebble whose HTTP-01 validation reaches the node's challenge folder, installs the chain
on the node and records its dates; failures name the step, the domain and the CA's problem; uploads are
checked by the node; the key is never on the master."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from agent.ops import web
from tests.certs import pebble
from tests.conftest import run_worker_burst
from tests.userdata.conftest import basic

pytestmark = pytest.mark.skipif(pebble.missing() is not None, reason=str(pebble.missing()))

ZONE = "shop-certs.example.com"
DOMAIN = ZONE
ALIAS = f"www.{ZONE}"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """pebble with real validation, no delays, one nonce in five refused."""
    running = pebble.start(tmp_path_factory.mktemp("pebble"), nonce_reject=20)
    yield running
    running.stop()


class Site:
    """alice's web domain on node n1, the app pointed at pebble, pebble's HTTP-01 served from n1."""

    def __init__(self, app, cluster, ca):
        self.app, self.cluster, self.ca = app, cluster, ca
        self.node_id = cluster.node("n1")
        cluster.user("alice")
        cluster.user("bob")
        cluster.zones("alice", ZONE)
        made = self.api("alice", "POST", "/api/v1/webdomains", {"name": DOMAIN, "aliases": [ALIAS]})
        assert made.status_code == 201, made.json
        self.id = made.json["id"]
        app.config.update(ACME_DIRECTORY_URL=ca.directory_url, ACME_EMAIL="admin@example.com",
                          ACME_CA_BUNDLE=str(ca.listener_ca))
        folder = cluster.root(self.node_id) / web.CHALLENGE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.responder = pebble.ChallengeResponder(folder, ca.http_port)

    def api(self, who: str, method: str, path: str, body=None):
        """One API call as a user."""
        return self.app.test_client().open(path, method=method, json=body, headers=basic(who))

    def cert_file(self) -> Path:
        return self.cluster.state(self.node_id) / "tls" / f"{DOMAIN}.crt"

    def served(self) -> bytes | None:
        """The chain the node serves for the domain (None before any key was made)."""
        path = self.cert_file()
        return path.read_bytes() if path.exists() else None

    def keys(self) -> list[Path]:
        folder = self.cluster.state(self.node_id) / "tls"
        return sorted(folder.glob("*.key")) if folder.exists() else []

    def request(self, who: str = "alice", body=None) -> dict:
        """Request a certificate and run the queued job to its end; the operation."""
        started = self.api(who, "POST", f"/api/v1/certificates/{self.id}/acme", body or {})
        assert started.status_code == 202, started.json
        run_worker_burst(self.app, queues=("default",))
        return self.api(who, "GET", started.json["operation"]["url"]).json


@pytest.fixture
def site(app, cluster, ca):
    """alice's site, ready for a certificate."""
    made = Site(app, cluster, ca)
    yield made
    made.responder.close()


def served_chain(site: Site) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(site.served())


def test_request_issues_installs_and_records(site):
    """The operation logs each step, the node serves a chain pebble's root validates for both names,
    and the record has pebble's issuer and the leaf's dates."""
    operation = site.request()
    assert operation["status"] == "succeeded", operation
    from app.models import Operation
    with site.app.app_context():
        from app.extensions import db
        text = db.session.get(Operation, operation["id"]).log
    for step in ("key:", "account", "order", "authorization", "challenge", "finalize", "installed"):
        assert step in text, (step, text)
    chain = served_chain(site)
    root = x509.load_pem_x509_certificate(site.ca.root_pem())
    for name in (DOMAIN, ALIAS):
        PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(name)).verify(chain[0], chain[1:])
    record = site.api("alice", "GET", f"/api/v1/certificates/{site.id}").json
    assert record["kind"] == "acme" and record["state"] == "valid" and record["last_error"] == ""
    assert sorted(record["names"]) == sorted([DOMAIN, ALIAS])
    assert "Pebble" in record["issuer"]
    assert dt.datetime.fromisoformat(record["not_after"]) == chain[0].not_valid_after_utc
    listed = site.api("alice", "GET", "/api/v1/certificates").json
    assert [i["webdomain"] for i in listed["items"]] == [DOMAIN] and listed["items"][0]["expires_in_days"] > 0


def test_the_key_never_reaches_the_master(site):
    """After an issue and an upload, no byte run of the node's keys is in the master's database or data
    folder (operation logs included)."""
    assert site.request()["status"] == "succeeded"
    keys = [serialization.load_pem_private_key(p.read_bytes(), None) for p in site.keys()]
    assert len(keys) == 1
    key_own, cert_own = own_pair([DOMAIN, ALIAS])
    assert site.api("alice", "PUT", f"/api/v1/certificates/{site.id}/uploaded",
                    {"certificate": cert_own, "key": key_own}).status_code == 200
    secrets = [key_der(k) for k in keys] + [key_der(serialization.load_pem_private_key(key_own.encode(), None))]
    pems = [k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) for k in keys] + [key_own.encode()]
    data_dir = Path(site.app.config["DATA_DIR"])
    files = [p for p in data_dir.rglob("*") if p.is_file() and "agents" not in p.parts]
    assert files
    for path in files:
        content = path.read_bytes()
        for pem in pems:
            assert secret_run(pem) not in content, path
        for der in secrets:
            assert der not in content, path
    database = site.app.config["SQLALCHEMY_DATABASE_URI"]
    if database.startswith("sqlite:///"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as con:
            dump = "\n".join(con.iterdump()).encode()
        for pem in pems:
            assert secret_run(pem) not in dump


def secret_run(pem: bytes) -> bytes:
    """40 base64 characters of a PEM key past its algorithm header (which every P-256 key shares)."""
    return b"".join(pem.splitlines()[1:-1])[48:88]


def key_der(key) -> bytes:
    """The private scalar's bytes (what would leak in any encoding)."""
    return key.private_numbers().private_value.to_bytes(32, "big")


def test_domain_resolving_elsewhere_fails_naming_step_domain_and_address(site):
    """pebble sees the domain at another address: the operation fails at `challenge` naming the domain,
    the address and the CA's problem; the site keeps the certificate it had; the list shows the error."""
    upload_own(site)
    before = site.served()
    site.ca.set_a(DOMAIN, "127.0.0.2")
    try:
        operation = site.request()
    finally:
        site.ca.clear_a(DOMAIN)
    assert operation["status"] == "failed"
    message = operation["message"]
    assert "step challenge failed" in message and DOMAIN in message and "127.0.0.2" in message, message
    assert "urn:ietf:params:acme:error" in message
    assert site.served() == before
    record = site.api("alice", "GET", "/api/v1/certificates").json["items"][0]
    assert record["state"] == "failed" and "127.0.0.2" in record["last_error"]


def test_ca_down_fails_at_account_and_keeps_the_site(site):
    """No CA at the directory URL: the operation fails at `account` after its retries; the site keeps the
    certificate it had."""
    upload_own(site)
    before = site.served()
    site.app.config["ACME_DIRECTORY_URL"] = f"https://127.0.0.1:{pebble.free_port()}/dir"
    from app.services import acme
    acme_attempts, acme.ATTEMPTS = acme.ATTEMPTS, 2
    try:
        operation = site.request()
    finally:
        acme.ATTEMPTS = acme_attempts
    assert operation["status"] == "failed" and "step account failed" in operation["message"], operation
    assert site.served() == before


def upload_own(site: Site) -> None:
    """Serve a certificate of the customer's own (so a failed request has something to keep)."""
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    answer = site.api("alice", "PUT", f"/api/v1/certificates/{site.id}/uploaded",
                      {"certificate": cert_pem, "key": key_pem})
    assert answer.status_code == 200, answer.json


def own_pair(names: list[str], *, days: int = 90) -> tuple[str, str]:
    """A key and a certificate for names signed by a throwaway CA: (key PEM, leaf + CA PEM)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Customer's own CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=days + 1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca_cert)).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, pem


def test_upload_installs_own_pair_and_records_it(site):
    """An uploaded certificate with its key is served by the node, the key kept there 0600; the record
    says uploaded with the certificate's issuer; delete goes back to self-signed with a new key."""
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    answer = site.api("alice", "PUT", f"/api/v1/certificates/{site.id}/uploaded",
                      {"certificate": cert_pem, "key": key_pem})
    assert answer.status_code == 200, answer.json
    assert answer.json["kind"] == "uploaded" and "Customer's own CA" in answer.json["issuer"]
    assert served_chain(site)[0].public_bytes(serialization.Encoding.PEM).decode() in cert_pem
    (key_file,) = site.keys()
    assert key_file.read_bytes().decode() == key_pem and key_file.stat().st_mode & 0o777 == 0o600
    gone = site.api("alice", "DELETE", f"/api/v1/certificates/{site.id}")
    assert gone.status_code == 204
    leaf = served_chain(site)[0]
    assert leaf.issuer == leaf.subject  # self-signed again
    (new_key,) = site.keys()
    assert new_key != key_file
    assert site.api("alice", "GET", f"/api/v1/certificates/{site.id}").json["kind"] == "self-signed"


@pytest.mark.parametrize("case", ["mismatch", "garbage_cert", "garbage_key", "not_covering", "expired",
                                  "no_key", "not_string", "unknown_field", "huge"])
def test_upload_refusals_name_the_field_and_change_nothing(site, case):
    """Each bad upload is a 4xx naming its field; the node's files and the record are unchanged."""
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    other_key, _ = own_pair([DOMAIN, ALIAS])
    bodies = {
        "mismatch": ({"certificate": cert_pem, "key": other_key}, "key"),
        "garbage_cert": ({"certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
                          "key": key_pem}, "certificate"),
        "garbage_key": ({"certificate": cert_pem, "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                                           "-----END PRIVATE KEY-----\n"}, "key"),
        "not_covering": (dict(zip(("key", "certificate"), own_pair([DOMAIN]), strict=True)), "certificate"),
        "expired": (dict(zip(("key", "certificate"), own_pair([DOMAIN, ALIAS], days=-1), strict=True)),
                    "certificate"),
        "no_key": ({"certificate": cert_pem}, "key"),
        "not_string": ({"certificate": cert_pem, "key": 5}, "key"),
        "unknown_field": ({"certificate": cert_pem, "key": key_pem, "pkcs12": "x"}, "pkcs12"),
        "huge": ({"certificate": cert_pem, "key": key_pem + "A" * 70000}, "key"),
    }
    body, field = bodies[case]
    before = (site.served(), site.keys())
    answer = site.api("alice", "PUT", f"/api/v1/certificates/{site.id}/uploaded", body)
    assert 400 <= answer.status_code < 500 and field in answer.json["fields"], answer.json
    assert (site.served(), site.keys()) == before
    assert site.api("alice", "GET", f"/api/v1/certificates/{site.id}").json["kind"] == "self-signed"


def test_names_must_be_the_sites(site):
    """A request for a name that is not this web domain's (another owner's, or a random one) is 400
    naming `names`, and starts no operation."""
    for names in (["evil.example.org"], [DOMAIN, "evil.example.org"], "x", [], [5]):
        answer = site.api("alice", "POST", f"/api/v1/certificates/{site.id}/acme", {"names": names})
        assert answer.status_code == 400 and "names" in answer.json["fields"], (names, answer.json)
    assert site.api("alice", "GET", "/api/v1/operations").json["items"] == []
    answer = site.api("alice", "POST", f"/api/v1/certificates/{site.id}/acme", {"nope": 1})
    assert answer.status_code == 400 and "nope" in answer.json["fields"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/certificates/{id}", None),
    ("POST", "/api/v1/certificates/{id}/acme", {}),
    ("PUT", "/api/v1/certificates/{id}/uploaded", {"certificate": "x", "key": "y"}),
    ("PUT", "/api/v1/certificates/{id}/switches", {"redirect": True}),
    ("DELETE", "/api/v1/certificates/{id}", None),
])
def test_access_matrix(site, method, path, body):
    """Another customer gets 404 (the site is not revealed), no credentials 401, an administrator may."""
    url = path.format(id=site.id)
    before = site.served()
    assert site.api("bob", method, url, body).status_code == 404
    assert site.app.test_client().open(url, method=method, json=body).status_code == 401
    assert site.served() == before
    assert site.api("bob", "GET", "/api/v1/certificates").json["items"] == []
    site.cluster.user("chief", admin=True)
    admin = site.api("chief", method, url, body)
    assert admin.status_code in (200, 202, 204, 400, 409), admin.json
    assert site.api("chief", "GET", "/api/v1/certificates").json["total"] == 1


def test_switches_reach_the_node(site):
    """Redirect and HSTS are stored on the node and in the record; a non-boolean is 400 naming it; with
    no certificate yet, 409."""
    early = site.api("alice", "PUT", f"/api/v1/certificates/{site.id}/switches", {"redirect": True})
    assert early.status_code == 409 and "redirect" in early.json["fields"], early.json
    assert site.request()["status"] == "succeeded"
    answer = site.api("alice", "PUT", f"/api/v1/certificates/{site.id}/switches", {"redirect": True, "hsts": True})
    assert answer.status_code == 200 and answer.json["redirect"] and answer.json["hsts"]
    vhosts = "".join(p.read_text() for p in (site.cluster.root(site.node_id) / "etc" / "nginx").rglob("*.conf"))
    assert "return 301 https://" in vhosts and "Strict-Transport-Security" in vhosts
    bad = site.api("alice", "PUT", f"/api/v1/certificates/{site.id}/switches", {"hsts": "yes"})
    assert bad.status_code == 400 and "hsts" in bad.json["fields"]


def test_renewal_job_renews_what_expires_soon(site):
    """The periodic renewal starts an operation for an ACME certificate within 30 days of its end (not
    for one further off), and the new certificate replaces the old on the node."""
    assert site.request()["status"] == "succeeded"
    first = served_chain(site)[0]
    from app.extensions import db
    from app.models import Certificate
    from app.services.certificates import renew_due
    with site.app.app_context():
        assert renew_due() == []
        cert = db.session.query(Certificate).one()
        cert.not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
        db.session.commit()
        started = renew_due()
    assert len(started) == 1
    run_worker_burst(site.app, queues=("default",))
    operation = site.api("alice", "GET", f"/api/v1/operations/{started[0]}").json
    assert operation["status"] == "succeeded" and operation["title"].startswith("Renew"), operation
    renewed = served_chain(site)[0]
    assert renewed.serial_number != first.serial_number
    assert len(site.keys()) == 1


@pytest.mark.parametrize("field", ["names", "certificate", "chain", "key", "redirect", "hsts"])
def test_hostile_values_name_their_field(site, field):
    """Every value of the shared hostile corpus in each field of the resource: a 4xx naming the field,
    nothing on the node changed, no operation started."""
    from tests.certs.test_agent_certs import HOSTILE

    upload_own(site)
    key_pem, cert_pem = own_pair([DOMAIN, ALIAS])
    before = (site.served(), site.keys())
    for value in HOSTILE:
        if field == "names":
            if value is None:
                continue  # null is "the default names"
            method, path, body = "POST", "acme", {"names": value}
        elif field in ("redirect", "hsts"):
            if isinstance(value, bool):
                continue
            method, path, body = "PUT", "switches", {field: value}
        else:
            if field == "chain" and value in (None, ""):
                continue
            method, path, body = "PUT", "uploaded", {"certificate": cert_pem, "key": key_pem, field: value}
        answer = site.api("alice", method, f"/api/v1/certificates/{site.id}/{path}", body)
        assert 400 <= answer.status_code < 500, (field, value, answer.status_code)
        fields = answer.json["fields"]
        assert field in fields or (field == "chain" and "certificate" in fields), (field, value, answer.json)
        assert (site.served(), site.keys()) == before, (field, value)
    assert site.api("alice", "GET", "/api/v1/operations").json["items"] == []


def test_a_request_for_a_site_deleted_before_its_job_ran_does_nothing(site):
    """alice asks, then deletes her site; bob's new site may get its id back (SQLite reuses the highest
    id): the queued job touches neither, and alice's operation fails saying her site was deleted."""
    started = site.api("alice", "POST", f"/api/v1/certificates/{site.id}/acme", {})
    assert started.status_code == 202
    assert site.api("alice", "DELETE", f"/api/v1/webdomains/{site.id}").status_code == 204
    other = "bob-certs.example.net"
    site.cluster.zones("bob", other)
    made = site.api("bob", "POST", "/api/v1/webdomains", {"name": other})
    assert made.status_code == 201, made.json
    run_worker_burst(site.app, queues=("default",))
    operation = site.api("alice", "GET", started.json["operation"]["url"]).json
    assert operation["status"] == "failed" and "deleted" in operation["message"], operation
    from app.extensions import db
    from app.models import Operation
    with site.app.app_context():
        log = db.session.get(Operation, operation["id"]).log or ""
    assert other not in log and other not in operation["message"], (log, operation["message"])
    assert not (site.cluster.state(site.node_id) / "tls" / f"{other}.crt").exists()
    assert site.api("bob", "GET", f"/api/v1/certificates/{made.json['id']}").json["state"] == "valid"


def test_a_site_deleted_while_its_certificate_is_issued_ends_the_operation(site, monkeypatch):
    """The site is deleted after the order was placed: the operation ends failed saying the site was
    deleted (it is not left running), and no record of the certificate is left behind."""
    from app.services import acme, certificates

    real_issue = acme.issue

    def issue_then_delete(*args, **kwargs):
        assert site.api("alice", "DELETE", f"/api/v1/webdomains/{site.id}").status_code == 204
        return real_issue(*args, **kwargs)

    monkeypatch.setattr(certificates.acme, "issue", issue_then_delete)
    operation = site.request()
    assert operation["status"] == "failed" and "deleted" in operation["message"], operation
    from app.extensions import db
    from app.models import Certificate
    with site.app.app_context():
        assert db.session.query(Certificate).count() == 0


def test_a_worker_killed_after_the_order_leaves_nothing_issuing(site, client, auth, monkeypatch):
    """The worker is SIGKILLed once the CA has the order: recovery (run by the sync job) sees its alive
    key lapse and fails the operation and the record, naming the step and saying to request again; the
    page shows it, and a new request is accepted and succeeds."""
    from app.extensions import db
    from app.models import Operation
    from app.services.sync import recover_interrupted_operations
    from tests.conftest import wait_until
    from tests.system.conftest import spawn_worker

    for name, value in (("ACME_DIRECTORY_URL", site.ca.directory_url), ("ACME_EMAIL", "admin@example.com"),
                        ("ACME_CA_BUNDLE", str(site.ca.listener_ca))):
        monkeypatch.setenv(name, value)
    started = site.api("alice", "POST", f"/api/v1/certificates/{site.id}/acme", {})
    assert started.status_code == 202
    operation_id = started.json["operation"]["id"]
    worker = spawn_worker(site.app, "default", failpoints="cert.after_order=kill")
    assert worker.wait(60) == -9, "the failpoint kills the worker"
    record = site.api("alice", "GET", f"/api/v1/certificates/{site.id}").json
    assert record["state"] == "issuing"

    def recovered():
        with site.app.app_context():
            done = recover_interrupted_operations()
            db.session.rollback()
            return operation_id in done

    wait_until(recovered, 20, interval=0.5, what="recovery to see the dead worker")
    operation = site.api("alice", "GET", f"/api/v1/operations/{operation_id}").json
    assert operation["status"] == "failed", operation
    assert "worker stopped after step order" in operation["message"], operation["message"]
    record = site.api("alice", "GET", f"/api/v1/certificates/{site.id}").json
    assert record["state"] == "failed" and "request the certificate again" in record["last_error"], record
    with site.app.app_context():
        assert "recovered after the worker stopped" in db.session.get(Operation, operation_id).log
    auth.login("alice", create=False)
    page = client.get(f"/domains/certificates/{site.id}").text
    assert "worker stopped after step order" in page and "state-failed" in page
    assert site.request()["status"] == "succeeded"


def test_a_record_left_issuing_with_no_operation_running_is_released(site):
    """A record still issuing after its operation ended (or with none) is failed by recovery, saying to
    request again; one marked a moment ago (its operation about to be recorded) is left alone."""
    from app.extensions import db
    from app.models import Certificate, WebDomainIndex
    from app.models.base import utcnow
    from app.services.certificates import STUCK_GRACE, record_of
    from app.services.sync import recover_interrupted_operations

    with site.app.app_context():
        cert = record_of(db.session.get(WebDomainIndex, site.id))
        cert.state = "issuing"
        db.session.commit()
        recover_interrupted_operations()
        assert db.session.query(Certificate).one().state == "issuing"
        cert = db.session.query(Certificate).one()
        cert.updated_at = utcnow() - STUCK_GRACE - dt.timedelta(seconds=1)
        db.session.commit()
        recover_interrupted_operations()
    record = site.api("alice", "GET", f"/api/v1/certificates/{site.id}").json
    assert record["state"] == "failed" and "request the certificate again" in record["last_error"], record


def test_requests_per_customer_are_limited_so_one_cannot_spend_the_panels_acme_account(site):
    """Every customer's requests go through the panel's one ACME account, whose orders the CA limits:
    past REQUESTS_PER_HOUR requests in the last hour a customer's next one is 429 naming `id` and starts
    nothing; an administrator is not held back."""
    from app.extensions import db
    from app.models import Operation, User
    from app.services.certificates import ISSUE_KIND, REQUESTS_PER_HOUR

    with site.app.app_context():
        alice = db.session.query(User).filter_by(name="alice").one()
        for _ in range(REQUESTS_PER_HOUR):
            db.session.add(Operation(kind=ISSUE_KIND, title="Issue", status="failed", created_by_id=alice.id,
                                     params={"webdomain_id": site.id}))
        db.session.commit()
        before = db.session.query(Operation).count()
    answer = site.api("alice", "POST", f"/api/v1/certificates/{site.id}/acme", {})
    assert answer.status_code == 429 and "id" in answer.json["fields"], answer.json
    assert "per hour" in str(answer.json), answer.json
    with site.app.app_context():
        assert db.session.query(Operation).count() == before
    site.cluster.user("chief", admin=True)
    assert site.api("chief", "POST", f"/api/v1/certificates/{site.id}/acme", {}).status_code == 202
