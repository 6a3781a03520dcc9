"""A hostile customer's (mallory's) review of the master: names, logins, sessions, cross-site calls.

Each test is one attack: mallory against alice (a customer holding victim.example) and the administrators.
A test marked xfail(strict) is a finding not fixed yet; the others are attacks that held.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from
from tests.support.panel import logged_in
from tests.userdata.conftest import basic


@pytest.fixture
def world(app, client, cluster, users):
    """Node n1; alice holds the zone victim.example; mallory and bob are customers; root is an administrator."""
    node_id = cluster.node("n1")
    for name in ("alice", "mallory", "bob"):
        cluster.user(name)
    users.make("root", admin=True)
    zone = client.post("/api/v1/domains", json={"name": "victim.example", "ip": "192.0.2.1"}, headers=basic("alice"))
    assert zone.status_code == 201, zone.json
    return node_id


def owners_of(app, model, *names) -> dict[str, str]:
    """Who the index says holds each name of this model."""
    from app.extensions import db
    from app.models import User

    with app.app_context():
        rows = db.session.execute(select(model.name, User.name).join(User, User.id == model.owner_id)
                                  .where(model.name.in_(names))).all()
    return dict(rows)


# ---------------------------------------------------------------- names: check-then-claim across kinds


def alice_creates_target_zone(app):
    """alice's zone target.example, created by another request while this one is between two steps (this
    request's read is ended first, so that on SQLite the other request can write)."""
    from app.extensions import db

    db.session.commit()
    answers = []
    other = threading.Thread(target=lambda: answers.append(app.test_client().post(
        "/api/v1/domains", json={"name": "target.example", "ip": "192.0.2.1"}, headers=basic("alice"))))
    other.start()
    other.join(60)
    assert answers and answers[0].status_code == 201, answers and answers[0].json


def test_two_creates_of_related_names_at_once_do_not_give_them_to_two_owners(app, client, cluster, monkeypatch,
                                                                             users):
    """mallory's zone shop.target.example and alice's zone target.example, created at once: the registry's
    check and the claim are two steps, and the index's unique name only covers the same name in the same
    table. Whichever of the two lands, one owner must end up with both names or one of them refused."""
    from app.models import DomainIndex
    from app.services import userdata

    cluster.node("n1")
    for name in ("alice", "mallory"):
        cluster.user(name)
    real_check_limit = userdata.check_limit
    fired = []

    def alice_meanwhile(owner, kind_name, *rest, **options):
        # mallory's create passed the registry; alice's create of the parent runs before mallory's claim.
        if owner.name == "mallory" and not fired:
            fired.append(True)
            alice_creates_target_zone(app)
        return real_check_limit(owner, kind_name, *rest, **options)

    monkeypatch.setattr(userdata.crud, "check_limit", alice_meanwhile)
    mallory = client.post("/api/v1/domains", json={"name": "shop.target.example", "ip": "192.0.2.9"},
                          headers=basic("mallory"))
    assert fired
    held = owners_of(app, DomainIndex, "target.example", "shop.target.example")
    assert held.get("target.example") == "alice"
    assert mallory.status_code == 409, (mallory.status_code, mallory.json, held)
    assert "shop.target.example" not in held, held


def test_an_alias_change_racing_a_zone_create_does_not_give_the_name_to_two_owners(app, client, cluster, world,
                                                                                  monkeypatch):
    """mallory adds the alias shop.target.example to her web domain while alice creates the zone
    target.example: alice's create lands between the registry's check and the alias's indexing."""
    from app.extensions import db
    from app.models import DomainIndex, WebDomainAlias
    from app.services import userdata

    assert client.post("/api/v1/domains", json={"name": "mallory.example", "ip": "192.0.2.9"},
                       headers=basic("mallory")).status_code == 201
    site = client.post("/api/v1/webdomains", json={"name": "mallory.example"}, headers=basic("mallory"))
    assert site.status_code == 201, site.json
    real_index_aliases = userdata.index_aliases
    fired = []

    def alice_meanwhile(row, aliases):
        if not fired and "shop.target.example" in aliases:
            fired.append(True)
            alice_creates_target_zone(app)
        return real_index_aliases(row, aliases)

    monkeypatch.setattr(userdata.crud, "index_aliases", alice_meanwhile)
    # The proof lookup must not leave the machine: mallory holds no zone for target.example.
    monkeypatch.setattr("app.services.names.proven", lambda owner, name: True)
    change = client.put(f"/api/v1/webdomains/{site.json['id']}", json={"aliases": ["shop.target.example"]},
                        headers=basic("mallory"))
    assert fired
    assert owners_of(app, DomainIndex, "target.example") == {"target.example": "alice"}
    assert change.status_code == 409, change.json
    with app.app_context():
        assert db.session.scalar(select(WebDomainAlias.name).where(WebDomainAlias.name == "shop.target.example")) \
            is None
    shown = client.get(f"/api/v1/webdomains/{site.json['id']}", headers=basic("mallory")).json
    assert shown["aliases"] == [], shown


@pytest.mark.parametrize("path,name", [
    ("/api/v1/domains", "VICTIM.Example."),
    ("/api/v1/domains", "ｖｉｃｔｉｍ.example"),
    ("/api/v1/domains", "Shop.Victim.Example."),
    ("/api/v1/domains", "victim。example"),
    ("/api/v1/webdomains", "WWW.victim.example."),
    ("/api/v1/maildomains", "victim.EXAMPLE"),
])
def test_other_spellings_of_alices_names_are_refused(app, client, world, path, name):
    """Case, a final dot, full-width letters, the ideographic full stop: the same name to the registry."""
    body = {"name": name} | ({"ip": "192.0.2.9"} if path.endswith("domains") and "web" not in path
                             and "mail" not in path else {})
    answer = client.post(path, json=body, headers=basic("mallory"))
    assert answer.status_code == 409, answer.json
    assert list(answer.json["fields"]) == ["name"]


def test_a_mailbox_in_alices_mail_domain_is_refused(app, client, world):
    """mallory asks for postmaster@victim.example in alice's mail domain: not one of her mail domains."""
    assert client.post("/api/v1/maildomains", json={"name": "victim.example"}, headers=basic("alice")).status_code \
        == 201
    for address in ("postmaster@victim.example", "Postmaster@VICTIM.example.", "x@ｖｉｃｔｉｍ.example"):
        answer = client.post("/api/v1/mailboxes", json={"address": address, "password": "a long password"},
                             headers=basic("mallory"))
        assert answer.status_code in (400, 404), (address, answer.status_code, answer.json)
        assert list(answer.json["fields"]) == ["address"]


@pytest.mark.parametrize("record", [
    {"name": "victim.example.", "type": "NS", "value": "ns.mallory.example."},
    {"name": "@victim.example", "type": "A", "value": "192.0.2.66"},
    {"name": "victim.example\n@", "type": "A", "value": "192.0.2.66"},
    {"name": "x", "type": "A", "value": "192.0.2.66\nvictim.example. IN A 192.0.2.66"},
    {"name": "x", "type": "TXT", "value": "a\"\nvictim.example. IN A 1.2.3.4"},
    {"name": "x", "type": "CAA", "value": "0 issue \"ca.example\"\nvictim.example. IN A 1.2.3.4"},
    {"name": "x", "type": "CNAME", "value": "victim.example.\n$ORIGIN victim.example."},
])
def test_records_in_mallorys_zone_stay_in_her_zone(app, client, world, record):
    """A record named or valued to reach out of mallory's zone (absolute names, new lines, zone-file
    directives) is refused before anything is sent."""
    zone = client.post("/api/v1/domains", json={"name": "mallory.example", "ip": "192.0.2.9"},
                       headers=basic("mallory"))
    assert zone.status_code == 201, zone.json
    answer = client.post(f"/api/v1/domains/{zone.json['id']}/records", json=record, headers=basic("mallory"))
    assert answer.status_code == 400, answer.json


def test_a_refusal_does_not_tell_mallory_alices_hidden_names_or_her_account(app, client, world):
    """mallory asks for a parent of a name alice holds (unpublished: no public DNS needed): the refusal says
    a name under it is another account's, naming the field, but not which name nor whose; an administrator
    asking the same for mallory is told both."""
    assert client.post("/api/v1/domains", json={"name": "secret-staging.corp.example", "ip": "192.0.2.1"},
                       headers=basic("alice")).status_code == 201
    answer = client.post("/api/v1/domains", json={"name": "corp.example", "ip": "192.0.2.9"},
                         headers=basic("mallory"))
    assert answer.status_code == 409
    assert list(answer.json["fields"]) == ["name"], answer.json
    assert "another account" in answer.json["error"], answer.json
    text = answer.text
    assert "secret-staging" not in text and "alice" not in text, text
    admin = client.post("/api/v1/domains", json={"name": "corp.example", "owner": "mallory", "ip": "192.0.2.9"},
                        headers=basic("root"))
    assert admin.status_code == 409 and list(admin.json["fields"]) == ["name"], admin.json
    assert "corp.example is above alice's zone secret-staging.corp.example" in admin.json["error"], admin.json


@pytest.mark.parametrize("headers", [
    {"Origin": "null"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "http://localhost:80"},
    {"X-HTTP-Method-Override": "DELETE"},
    {"X-Requested-With": "XMLHttpRequest", "Origin": "null"},
])
def test_cross_site_variants_of_a_write_are_refused(app, client, world, headers):
    """Origin null (sandboxed frames, data: URLs), look-alike origins, and method override headers."""
    zones = client.get("/api/v1/domains", headers=basic("alice")).json["items"]
    target = f"/api/v1/domains/{zones[0]['id']}"
    answer = client.post(target, json={}, headers={**basic("alice"), **headers})
    assert answer.status_code in (403, 405), answer.status_code
    assert len(client.get("/api/v1/domains", headers=basic("alice")).json["items"]) == 1


def test_a_node_address_a_customer_already_holds_is_refused(app, client, world):
    """The registry keeps the nodes' host names from customers only when the node comes first: mallory's
    zone node7.hosting.example made before the administrator adds a node at that address stays hers (a
    full reconciliation keeps a row its owner already has), and the cluster's name servers answer for the
    node's name as she likes. Adding the node must be refused while a customer holds its name."""
    from app.services.setup import InputErrors, validate_node_input

    made = client.post("/api/v1/domains", json={"name": "hosting.example", "ip": "192.0.2.9"},
                       headers=basic("mallory"))
    assert made.status_code == 201, made.json
    with app.app_context():
        with pytest.raises(InputErrors) as refused:
            validate_node_input({"name": "node7", "address": "node7.hosting.example"}, require_credentials=False)
        assert "address" in refused.value.fields and "hosting.example" in refused.value.fields["address"]
        # A name nobody here holds is fine.
        validate_node_input({"name": "node8", "address": "node8.free.example"}, require_credentials=False)


@pytest.fixture
def no_nul_to_the_database(app):
    """Fail any statement whose parameters carry a NUL character, as PostgreSQL does (psycopg raises
    DataError "text fields cannot contain NUL", a 500); SQLite takes them, so the tests would not see it."""
    from sqlalchemy import event

    from app.extensions import db

    seen = []

    def check(conn, cursor, statement, parameters, context, executemany):
        rows = parameters if executemany else [parameters]
        for row in rows or []:
            values = row.values() if isinstance(row, dict) else row
            if any(isinstance(value, str) and "\x00" in value for value in values or []):
                seen.append(statement)
                raise ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", check)
    yield seen
    event.remove(engine, "before_cursor_execute", check)


def test_a_nul_in_a_user_name_is_a_wrong_login_not_a_500(app, client, users, no_nul_to_the_database):
    """The login form and HTTP Basic pass the user name to the database as typed: with a NUL in it,
    PostgreSQL deployments answered 500 to anyone, before any login was counted."""
    users.make("root", admin=True)
    page = client.get("/login")
    form = client.post("/login", data={"username": "ro\x00ot", "password": "x" * 12,
                                       "csrf_token": csrf_from(page.text)})
    assert form.status_code == 400, form.status_code
    api = client.get("/api/v1/domains", headers=basic("ro\x00ot", "x" * 12))
    assert api.status_code == 401, api.status_code
    assert no_nul_to_the_database == []




@pytest.mark.parametrize("path", ["/domains/names", "/domains/web", "/mail/domains", "/mail/mailboxes"])
@pytest.mark.parametrize("page", ["99999999999999999999999", "-99999999999999999999999", "9223372036854775807"])
def test_a_huge_page_number_on_a_list_page_is_not_a_500(app, world, path, page):
    """?page= is any integer the URL holds; its offset must not overflow the database's integers."""
    browser = logged_in(app, "mallory")
    answer = browser.get(f"{path}?page={page}")
    assert answer.status_code in (200, 400, 404), answer.status_code


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000, '"\\ud800"', '{"name": "\\u0000"}', "NaN",
                                  '{"name": 1e999999}', '{"name": "x", "name": "victim.example"}'])
def test_hostile_json_is_a_4xx_not_a_500(app, client, world, body):
    """Nesting past the parser's recursion, lone surrogates, NaN and infinities, duplicate keys."""
    answer = client.post("/api/v1/domains", data=body, content_type="application/json", headers=basic("mallory"))
    assert 400 <= answer.status_code < 500, answer.status_code
    assert answer.is_json, answer.text[:200]


@pytest.mark.parametrize("path", ["/api/v1/firewall", "/api/v1/scheduler", "/api/v1/nodes/1/sync"])
def test_json_nested_too_deep_for_the_admins_lists_is_a_4xx(app, client, world, path):
    """The routes that read the body with request.get_json (not webargs) too."""
    answer = client.post(path, data="[" * 100_000, content_type="application/json", headers=basic("root"))
    assert 400 <= answer.status_code < 500, answer.status_code


@pytest.mark.parametrize("alias", ["*.victim.example", "*.example", "_x.victim.example", "victim.example.",
                                   "VICTIM.example", "xn--victim-.example", "www.victim.example"])
def test_an_alias_put_on_mallorys_site_cannot_reach_alices_names(app, client, world, alias):
    """Wildcards, underscores, another spelling: a PUT of aliases is refused (400 or 409 naming aliases)."""
    assert client.post("/api/v1/domains", json={"name": "mallory.example", "ip": "192.0.2.9"},
                       headers=basic("mallory")).status_code == 201
    site = client.post("/api/v1/webdomains", json={"name": "mallory.example"}, headers=basic("mallory"))
    answer = client.put(f"/api/v1/webdomains/{site.json['id']}", json={"aliases": [alias]}, headers=basic("mallory"))
    assert answer.status_code in (400, 409), answer.json
    assert list(answer.json["fields"]) == ["aliases"], answer.json


class SlowTxtServer:
    """A loopback DNS server that answers every TXT question with one value, after a delay: a customer's own
    name server, slow on purpose (each answer just inside the master's timeout)."""

    def __init__(self, value: str, delay: float):
        import socket

        self.value, self.delay, self.asked = value, delay, 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        import time

        import dns.message
        import dns.rrset

        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            self.asked += 1
            query = dns.message.from_wire(wire)
            answer = dns.message.make_response(query)
            answer.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "TXT", f'"{self.value}"'))
            time.sleep(self.delay)
            try:
                self.sock.sendto(answer.to_wire(), peer)
            except OSError:
                return

    def close(self):
        self.sock.close()


def test_slow_proofs_of_control_do_not_hold_a_request_for_minutes(app, client, world):
    """mallory's web domain with 12 aliases, each proven by her own name server answering just inside the
    proof timeout: the master looked each one up in turn (64 aliases at 3 s: over 3 minutes of a
    worker per request, and she can send as many requests as there are threads). One request's proofs
    together get one name's time (twice NAME_PROOF_TIMEOUT_S); a proof found at a registrable domain
    serves its other names in the request."""
    import time

    from app.extensions import db
    from app.models import User
    from app.services.names import owner_token

    with app.app_context():
        token = owner_token(db.session.scalar(select(User).where(User.name == "mallory")))
    server = SlowTxtServer(token, delay=0.3)
    app.config["NAME_PROOF_RESOLVERS"] = [("127.0.0.1", server.port)]
    app.config["NAME_PROOF_TIMEOUT_S"] = 1
    try:
        aliases = [f"a{n}.slow{n}.example" for n in range(12)]
        started = time.monotonic()
        answer = client.post("/api/v1/webdomains", json={"name": "slow.example", "aliases": aliases},
                             headers=basic("mallory"))
        took = time.monotonic() - started
    finally:
        server.close()
    assert took < 2 * 1 + 1.5, (took, answer.status_code, server.asked)
    assert answer.status_code in (201, 409), answer.json


HOSTILE_VALUES = ["\x00", "a" * 5000, "☃.example", " , ,", "%00", "1e999", "99999999999999999999999", "-1",
                  "victim.example\r\nX-Injected: 1", "<script>alert(1)</script>.example"]


def test_hostile_values_in_every_customer_form_are_never_a_500(app, client, world):
    """mallory's zone, web domain, record, mail domain and mailbox forms, and the edit forms of her web
    domain and mailbox, with each field set to each hostile value (the others left sensible)."""
    assert client.post("/api/v1/domains", json={"name": "mallory.example", "ip": "192.0.2.9"},
                       headers=basic("mallory")).status_code == 201
    site = client.post("/api/v1/webdomains", json={"name": "mallory.example"}, headers=basic("mallory")).json
    zone = client.get("/api/v1/domains", headers=basic("mallory")).json["items"][0]
    assert client.post("/api/v1/maildomains", json={"name": "mallory.example"}, headers=basic("mallory")) \
        .status_code == 201
    box = client.post("/api/v1/mailboxes", json={"address": "me@mallory.example", "password": "a long password"},
                      headers=basic("mallory")).json
    forms = [
        ("/domains/names", {"name": "new.mallory2.example", "ip": "192.0.2.9", "nameservers": ""}),
        ("/domains/web", {"name": "www2.mallory.example", "aliases": "", "docroot": "", "php": "y"}),
        (f"/domains/web/{site['id']}", {"aliases": "", "docroot": "www/x", "php": "y"}),
        (f"/domains/names/{zone['id']}", {"name": "x", "type": "A", "value": "192.0.2.1", "ttl": "60",
                                          "priority": ""}),
        ("/mail/domains", {"name": "mail2.mallory.example"}),
        ("/mail/mailboxes", {"address": "you@mallory.example", "password": "a long password", "quota_mb": "0"}),
        (f"/mail/mailboxes/{box['id']}", {"password": "", "quota_mb": "0", "forward": ""}),
    ]
    browser = logged_in(app, "mallory")
    failures, statuses = [], {}
    for path, good in forms:
        for field in good:
            for value in HOSTILE_VALUES:
                page = browser.get(path)
                assert page.status_code == 200, (path, page.status_code)
                answer = browser.post(path, data={**good, field: value, "csrf_token": csrf_from(page.text)})
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code >= 500:
                    failures.append((path, field, value[:20], answer.status_code))
    assert failures == []
    assert statuses.get(302, 0) + statuses.get(200, 0) > 0, statuses  # the forms were taken, not all refused


def test_a_customer_is_not_placed_on_the_masters_own_server(app, cluster):
    """The master's own server and another ready node: a customer's PHP runs as their UID on the node that
    holds them and reaches its loopback (the panel's Redis, gunicorn), so customers go to the other node.
    A single-server install still places them on the local node, whose firewall closes loopback to them
    (tests/userdata/test_placement.py, agent/tests/test_ops_firewall.py)."""
    from app.extensions import db
    from app.models import Node, Placement, User

    node_id = cluster.node("local")
    with app.app_context():
        db.session.get(Node, node_id).is_local = True
        db.session.commit()
    cluster.node("n2")
    cluster.user("mallory")
    with app.app_context():
        mallory = db.session.scalar(select(User).where(User.name == "mallory"))
        placed = set(db.session.scalars(select(Placement.node_id).where(Placement.user_id == mallory.id)))
    assert node_id not in placed, "mallory's web, dns and mail are on the master's own server"


def test_a_job_written_into_redis_by_someone_else_does_not_run(app, redis_url, tmp_path):
    """What mallory's PHP on the master's own server can do with Redis on 127.0.0.1:6379: put a job on the
    panel's default queue naming any importable function (RQ's default serializer is pickle, so the
    arguments can be any object too); the worker runs it as the panel's user."""
    from redis import Redis
    from rq import Queue

    from tests.conftest import run_worker_burst

    marker = tmp_path / "pwned"
    Queue("default", connection=Redis.from_url(redis_url)).enqueue("os.system", f"touch {marker}")
    run_worker_burst(app)
    assert not marker.exists(), "a job from outside the panel ran as the panel's user"
