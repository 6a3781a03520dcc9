"""Web domains, DNS zones and mail proxied to the node that holds them; the index follows the agent."""

from __future__ import annotations

import pytest

from tests.userdata.conftest import basic


@pytest.fixture
def one_node(app, cluster):
    """A node with every role and a user placed on it."""
    node_id = cluster.node("n1")
    cluster.user("alice")
    return node_id


def test_web_domain_create_list_edit_delete(app, client, cluster, one_node):
    """The vhost appears in the agent's root, changes with an edit and goes with a delete."""
    headers = basic("alice")
    cluster.zones("alice", "example.com")
    created = client.post("/api/v1/webdomains", json={"name": "Example.COM", "aliases": ["www.example.com"]},
                          headers=headers)
    assert created.status_code == 201, created.json
    body = created.json
    assert body["name"] == "example.com" and body["owner"] == "alice" and body["node"] == "n1"
    vhost = cluster.root(one_node) / "etc/nginx/hostfleet/alice/example.com.conf"
    assert "server_name example.com www.example.com;" in vhost.read_text()
    listed = client.get("/api/v1/webdomains", headers=headers).json["items"]
    assert [(i["id"], i["name"], i["aliases"]) for i in listed] == [(body["id"], "example.com", ["www.example.com"])]
    edited = client.put(f"/api/v1/webdomains/{body['id']}", json={"php": True, "aliases": []}, headers=headers)
    assert edited.status_code == 200, edited.json
    assert edited.json["php"] is True and "www.example.com" not in vhost.read_text()
    assert "fastcgi_pass" in vhost.read_text()
    assert client.delete(f"/api/v1/webdomains/{body['id']}", headers=headers).status_code == 204
    assert not vhost.exists()
    assert client.get("/api/v1/webdomains", headers=headers).json["items"] == []


def test_lists_come_in_pages_by_name_with_the_total(client, cluster, one_node):
    """?page=&per_page= pages through the caller's records by name, each page with its details from the
    node; the total counts them all; a bad page size is a 422 naming the field."""
    headers = basic("alice")
    cluster.zones("alice", "c.example", "a.example", "b.example")
    for name in ("c.example", "a.example", "b.example"):
        assert client.post("/api/v1/webdomains", json={"name": name, "dns": False}, headers=headers).status_code == 201
    first = client.get("/api/v1/webdomains?per_page=2", headers=headers).json
    second = client.get("/api/v1/webdomains?per_page=2&page=2", headers=headers).json
    assert [i["name"] for i in first["items"]] == ["a.example", "b.example"]
    assert [i["name"] for i in second["items"]] == ["c.example"] and second["items"][0]["available"] is True
    assert (first["total"], first["page"], first["per_page"]) == (3, 1, 2)
    everything = client.get("/api/v1/webdomains", headers=headers).json
    assert len(everything["items"]) == 3 and everything["per_page"] == 100
    for query, field in (("per_page=0", "per_page"), ("per_page=1001", "per_page"), ("page=-1", "page"),
                         ("page=x", "page")):
        refused = client.get(f"/api/v1/webdomains?{query}", headers=headers)
        assert refused.status_code == 422 and field in refused.json["fields"], (query, refused.json)


def test_a_users_list_asks_the_node_for_that_users_records_only(client, cluster, one_node, monkeypatch):
    """Alice and bob on one node: alice's list asks the node for her records (`?owner=alice`), not every
    user's it holds, and carries their details; the admin's list asks for the two owners its page has
    there, and for everything once a page has more owners on a node than a query is worth."""
    from agent.client import AgentClient
    from app.services import userdata

    cluster.user("bob")
    cluster.user("root-admin", admin=True)
    for owner in ("alice", "bob"):
        cluster.zones(owner, f"{owner}.example")
        made = client.post("/api/v1/webdomains", json={"name": f"{owner}.example", "aliases": [f"www.{owner}.example"]},
                           headers=basic(owner))
        assert made.status_code == 201, made.json
    asked = []
    real = AgentClient.request

    def recorded(self, method, path, *args, **kwargs):
        asked.append((method, path))
        return real(self, method, path, *args, **kwargs)

    monkeypatch.setattr(AgentClient, "request", recorded)
    mine = client.get("/api/v1/webdomains", headers=basic("alice")).json["items"]
    assert asked == [("GET", "/v1/webdomains?owner=alice")]
    assert [(i["name"], i["aliases"], i["available"]) for i in mine] == [
        ("alice.example", ["www.alice.example"], True)]
    asked.clear()
    every = client.get("/api/v1/webdomains", headers=basic("root-admin")).json["items"]
    assert asked == [("GET", "/v1/webdomains?owner=alice&owner=bob")]
    assert [(i["name"], i["owner"], i["aliases"]) for i in every] == [
        ("alice.example", "alice", ["www.alice.example"]), ("bob.example", "bob", ["www.bob.example"])]
    monkeypatch.setattr(userdata.crud, "LIST_OWNERS_MAX", 1)
    asked.clear()
    assert client.get("/api/v1/webdomains", headers=basic("root-admin")).json["items"] == every
    assert asked == [("GET", "/v1/webdomains")]


def test_zone_records_serial_rises_on_every_edit(client, cluster, one_node):
    """A zone with records: the agent's zone file holds them and its serial rises with each edit."""
    headers = basic("alice")
    zone = client.post("/api/v1/domains", json={"name": "example.org", "ip": "192.0.2.10"}, headers=headers)
    assert zone.status_code == 201, zone.json
    zone_id, serial = zone.json["id"], zone.json["serial"]
    zone_file = cluster.root(one_node) / "etc/bind/hostfleet/example.org.zone"
    assert "192.0.2.10" in zone_file.read_text()
    added = client.post(f"/api/v1/domains/{zone_id}/records",
                        json={"name": "mail", "type": "MX", "value": "mx.example.org.", "priority": 10},
                        headers=headers)
    assert added.status_code == 201, added.json
    record_id = added.json["id"]
    after_add = client.get(f"/api/v1/domains/{zone_id}", headers=headers).json["serial"]
    assert after_add > serial
    edited = client.put(f"/api/v1/domains/{zone_id}/records/{record_id}",
                        json={"value": "mx2.example.org.", "priority": 20}, headers=headers)
    assert edited.status_code == 200, edited.json
    assert edited.json["value"] == "20 mx2.example.org." and edited.json["priority"] == 20
    after_edit = client.get(f"/api/v1/domains/{zone_id}", headers=headers).json["serial"]
    assert after_edit > after_add
    text = zone_file.read_text()
    assert "mx2.example.org." in text and f"{after_edit}" in text
    records = client.get(f"/api/v1/domains/{zone_id}/records", headers=headers).json["items"]
    assert {(r["name"], r["type"]) for r in records} >= {("@", "NS"), ("@", "A"), ("www", "A"), ("mail", "MX")}
    assert client.delete(f"/api/v1/domains/{zone_id}/records/{record_id}", headers=headers).status_code == 204
    assert "mx2.example.org." not in zone_file.read_text()
    assert client.delete(f"/api/v1/domains/{zone_id}", headers=headers).status_code == 204
    assert not zone_file.exists()


def test_mailbox_password_hashed_on_the_node_only(app, client, cluster, one_node, caplog):
    """The password reaches the node's dovecot passwd-file as a SHA512-CRYPT hash; the master keeps none of it."""
    headers = basic("alice")
    secret = "Tr0ub4dor&3 horse"
    cluster.zones("alice", "example.net")
    domain = client.post("/api/v1/maildomains", json={"name": "example.net"}, headers=headers)
    assert domain.status_code == 201, domain.json
    with caplog.at_level("DEBUG"):
        box = client.post("/api/v1/mailboxes", json={"address": "Info@example.net", "password": secret,
                                                     "quota_mb": 100}, headers=headers)
    assert box.status_code == 201, box.json
    assert box.json == {"id": box.json["id"], "address": "info@example.net", "address_unicode": "info@example.net",
                        "quota_mb": 100, "owner": "alice", "node": "n1", "forward": [], "state": "ready"}
    passwd = (cluster.root(one_node) / "etc/dovecot/hostfleet/passwd").read_text()
    assert "info@example.net:{SHA512-CRYPT}$6$" in passwd and secret not in passwd
    assert secret not in caplog.text
    for path in app.config["DATA_DIR"].glob("test.db*"):
        assert secret.encode() not in path.read_bytes(), path
    changed = client.put(f"/api/v1/mailboxes/{box.json['id']}", json={"password": "another long one"},
                         headers=headers)
    assert changed.status_code == 200 and "password" not in changed.json
    assert (cluster.root(one_node) / "etc/dovecot/hostfleet/passwd").read_text() != passwd
    refused = client.delete(f"/api/v1/maildomains/{domain.json['id']}", headers=headers)
    assert refused.status_code == 409 and "info@example.net" in refused.json["error"]
    assert client.delete(f"/api/v1/mailboxes/{box.json['id']}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/maildomains/{domain.json['id']}", headers=headers).status_code == 204


def test_web_and_mail_domains_create_their_dns_records(client, cluster, one_node):
    """dns=true: a new zone for a new name; records in the owner's zone for a name inside it."""
    headers = basic("alice")
    web = client.post("/api/v1/webdomains", json={"name": "example.info", "dns": True}, headers=headers)
    assert web.status_code == 201 and web.json["dns"] == {"zone": "example.info", "created_zone": True,
                                                          "records": 4}, web.json
    blog = client.post("/api/v1/webdomains", json={"name": "blog.example.info", "dns": True}, headers=headers)
    assert blog.json["dns"] == {"zone": "example.info", "created_zone": False, "records": 1}
    mail = client.post("/api/v1/maildomains", json={"name": "example.info", "dns": True}, headers=headers)
    assert mail.json["dns"] == {"zone": "example.info", "created_zone": False, "records": 2}
    zone = (cluster.root(one_node) / "etc/bind/hostfleet/example.info.zone").read_text()
    assert "blog 3600 IN A 127.0.0.1" in zone and "@ 3600 IN MX 10 mail.example.info." in zone
    zone_id = client.get("/api/v1/domains", headers=headers).json["items"][0]["id"]
    records = {(r["name"], r["type"], r["value"]) for r in
               client.get(f"/api/v1/domains/{zone_id}/records", headers=headers).json["items"]}
    assert {("blog", "A", "127.0.0.1"), ("mail", "A", "127.0.0.1"),
            ("@", "MX", "10 mail.example.info.")} <= records


def test_answers_say_how_long_the_master_waited_on_the_node(client, cluster, one_node):
    """Server-Timing: the request's time in the panel and, for a proxied call, the part spent on the agent
    (the master's own share is the difference); an answer that asked no agent has no agent timing."""
    headers = basic("alice")

    def timings(response) -> dict[str, float]:
        parts = [p.strip().split(";") for p in response.headers["Server-Timing"].split(",")]
        return {p[0]: float(p[1].removeprefix("dur=")) for p in parts}

    cluster.zones("alice", "example.com")
    created = timings(client.post("/api/v1/webdomains", json={"name": "timed.example.com"}, headers=headers))
    listed = timings(client.get("/api/v1/webdomains", headers=headers))
    for spent in (created, listed):
        assert set(spent) == {"total", "agent"} and 0 < spent["agent"] < spent["total"], spent
    assert set(timings(client.get("/api/v1/users", headers=basic("alice")))) == {"total"}
    # The total starts ahead of every hook: a form post the CSRF check refuses before any view runs
    # is timed too.
    refused = client.post("/login", data={"username": "alice", "password": "x"})
    assert refused.status_code == 400 and set(timings(refused)) == {"total"}, refused.headers


@pytest.mark.parametrize("credentials", ["basic", "token", "admin"])
def test_a_create_reads_the_owners_account_once_and_writes_the_index_twice(app, client, cluster, one_node,
                                                                           credentials):
    """What a create asks of the database (it is on the path whose overhead the bench measures): the
    owner's account is read once for all its checks (with an API token, in the token's own query; for an
    administrator creating for a user, with that user), the name is checked by one statement of the name
    registry across every kind (a mailbox's by its mail domain), by the claim itself and by that statement
    once more after the claim, and the index is
    written twice (the claim, its confirmation); the same for a mailbox."""
    from sqlalchemy import event

    from app.extensions import db
    from app.models import User
    from app.services import accounts

    headers, owner = basic("alice"), {}
    cluster.zones("alice", "mail.example", "counted.example")
    if credentials == "admin":
        cluster.user("root-admin", admin=True)
        headers, owner = basic("root-admin"), {"owner": "alice"}
    if credentials == "token":
        with app.app_context():
            alice = db.session.scalar(db.select(User).where(User.name == "alice"))
            headers = {"Authorization": f"Bearer {accounts.create_token(alice, 'counted')[1]}"}
    made = client.post("/api/v1/maildomains", json={"name": "mail.example", **owner}, headers=headers)
    assert made.status_code == 201, made.json
    with app.app_context():
        engine = db.engine
    for path, body, table in (("/api/v1/webdomains", {"name": "counted.example"}, "webdomain_index"),
                              ("/api/v1/mailboxes", {"address": "box@mail.example", "password": "a long secret"},
                               "mailbox_index")):
        seen = []

        def record(conn, cursor, statement, *rest, seen=seen):
            seen.append(" ".join(statement.split()))

        event.listen(engine, "before_cursor_execute", record)
        try:
            # A mailbox belongs to its mail domain's owner: it is never named.
            answer = client.post(path, json={**body, **(owner if table != "mailbox_index" else {})}, headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert answer.status_code == 201, answer.json
        assert len([s for s in seen if s.startswith("SELECT") and "user_accounts" in s]) == 1, seen
        if credentials != "basic":
            assert not [s for s in seen if "FROM user_accounts" in s], "read with the token or owner's user"
        writes = [s.split(" (")[0].split(" SET")[0] for s in seen if s.startswith(("INSERT", "UPDATE", "DELETE"))]
        assert writes == [f"INSERT INTO {table}", f"UPDATE {table}"], seen
        reads = [s for s in seen if s.startswith("SELECT") and f"FROM {table}" in s]
        if table == "mailbox_index":
            assert reads == [], seen
        else:
            # The registry's statement twice: its check, and again once the name is claimed (a create of a
            # related name of another owner's may have claimed it in between: names.recheck).
            assert len(reads) == 2 and all("reversed_name" in r and "FROM domain_index" in r for r in reads), seen


def test_php_settings(client, cluster, one_node):
    """(A short name: the test's folder is in the path of the site pool's socket, at most 107 bytes.) PHP
    settings given with a create reach the node as the site's own pool; a change replaces the set;
    a bad value is a 400 naming the setting with the node's files and the site's record unchanged."""
    headers = basic("alice")
    cluster.zones("alice", "php.example")
    created = client.post("/api/v1/webdomains", json={"name": "php.example", "php": True, "php_settings": {
        "memory_limit": "1G", "max_execution_time": 60}}, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["php_settings"] == {"memory_limit": "1024M", "max_execution_time": 60}
    site_id = created.json["id"]
    pools = cluster.root(one_node) / "etc/php/8.2/fpm/pool.d"
    [pool] = [p for p in pools.glob("hostfleet-alice.*.conf")]
    assert "php_admin_value[memory_limit] = 1024M" in pool.read_text()
    assert "php_admin_value[max_execution_time] = 60" in pool.read_text()
    before = cluster.tree(one_node)
    for body, field in (({"memory_limit": "100G"}, "php_settings.memory_limit"),
                        ({"upload_max_filesize": "20M"}, "php_settings.upload_max_filesize"),
                        ({"error_log": "/etc/passwd"}, "php_settings")):
        refused = client.put(f"/api/v1/webdomains/{site_id}", json={"php_settings": body}, headers=headers)
        assert refused.status_code in (400, 422) and field in str(refused.json), (body, refused.json)
    assert cluster.tree(one_node) == before
    assert client.get(f"/api/v1/webdomains/{site_id}", headers=headers).json["php_settings"] == {
        "memory_limit": "1024M", "max_execution_time": 60}
    changed = client.put(f"/api/v1/webdomains/{site_id}", json={"php_settings": {"display_errors": True}},
                         headers=headers)
    assert changed.status_code == 200 and changed.json["php_settings"] == {"display_errors": "on"}, changed.json
    assert "memory_limit" not in pool.read_text() and "php_admin_flag[display_errors] = on" in pool.read_text()
