"""The ops over HTTP: signed requests to the real agent app, JSON answers and errors."""

from __future__ import annotations

import pytest

from agent.tests.ops_helpers import config_digest, list_body, make_app, nft_usable, require_binary

RULES = [{"id": 1, "action": "accept", "protocol": "tcp", "ports": "80", "source": "",
          "comment": "web"}]
ENTRIES = [{"id": 1, "schedule": "@hourly", "user": "root", "command": "/bin/true",
            "comment": "", "enabled": True}]


@pytest.fixture
def agent(tmp_path):
    """The real app over a private root, and a signing client."""
    return make_app(tmp_path)


@pytest.mark.parametrize("name, rows", [("firewall", RULES), ("scheduler", ENTRIES),
                                        ("mail_whitelist", [{"id": 1, "sender": "a.com"}]),
                                        ("mail_blacklist", [{"id": 1, "sender": "x@b.com"}])])
def test_put_then_get_list(agent, name, rows):
    """PUT answers the held version/hash and changed; a repeat is unchanged; GET reads back."""
    if name == "firewall" and nft_usable():
        pytest.skip(nft_usable())
    if name.startswith("mail"):
        require_binary("exim", "doveconf")
    config, reloads, client = agent
    body = list_body(rows, version=3)
    first = client.request("PUT", f"/v1/lists/{name}", body)
    assert first.status_code == 200, first.json
    assert first.json == {"name": name, "version": 3, "hash": body["hash"], "changed": True}
    assert client.request("PUT", f"/v1/lists/{name}", body).json["changed"] is False
    held = client.request("GET", f"/v1/lists/{name}").json
    assert held == {"name": name, "version": 3, "hash": body["hash"], "rows": rows}
    stats = client.request("GET", "/v1/stats")
    if stats.status_code == 200 and "lists" in stats.json:
        assert stats.json["lists"][name]["hash"] == body["hash"]


def test_unknown_list_and_unsigned_request(agent):
    """An unknown list is a 404; an unsigned request never reaches the ops."""
    config, _, client = agent
    assert client.request("PUT", "/v1/lists/nope", list_body([])).status_code == 404
    before = config_digest(config)
    raw = client.client.put("/v1/lists/scheduler", json=list_body(ENTRIES))
    assert raw.status_code == 401
    assert config_digest(config) == before


def test_bad_row_is_400_naming_the_field(agent):
    """A bad cron field comes back as {"error", "fields"} naming rows[i].field."""
    config, _, client = agent
    response = client.request("PUT", "/v1/lists/scheduler",
                              list_body([{**ENTRIES[0], "schedule": "99 * * * *"}]))
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"rows[0].schedule"}


def test_firewall_lockout_refused_over_http(agent):
    """Dropping SSH for the caller's address is refused with a clear 400."""
    config, _, client = agent
    rows = [{"id": 1, "action": "drop", "protocol": "tcp", "ports": "22", "source": "127.0.0.0/8",
             "comment": ""}]
    response = client.request("PUT", "/v1/lists/firewall", list_body(rows))
    assert response.status_code == 400
    assert "SSH" in response.json["fields"]["rows[0]"]


def test_user_data_crud(agent):
    """Users, web domains, zones, records, mail domains and mailboxes over HTTP."""
    require_binary("nginx", "named-checkzone", "exim", "doveconf", "useradd")
    config, reloads, client = agent
    user = {"name": "carol", "uid": 2001, "gid": 2001, "shell": "/bin/bash"}
    assert client.request("POST", "/v1/users", user).status_code == 201
    assert client.request("POST", "/v1/users", user).status_code == 200
    created = client.request("POST", "/v1/webdomains", {"name": "carol.example", "owner": "carol"})
    assert created.status_code == 201, created.json
    assert client.request("GET", "/v1/webdomains").json["items"][0]["name"] == "carol.example"
    zone = client.request("POST", "/v1/domains", {"name": "carol.example", "owner": "carol",
                                                   "ip": "192.0.2.5"})
    assert zone.status_code == 201, zone.json
    record = client.request("POST", "/v1/domains/carol.example/records",
                            {"name": "api", "type": "A", "value": "192.0.2.6"})
    assert record.status_code == 201
    rid = record.json["id"]
    assert client.request("PUT", f"/v1/domains/carol.example/records/{rid}",
                          {"value": "192.0.2.7"}).json["data"] == "192.0.2.7"
    bad = client.request("POST", "/v1/domains/carol.example/records",
                         {"name": "www", "type": "CNAME", "value": "@"})
    assert bad.status_code == 422 and "CNAME and other data" in bad.json["error"]
    assert client.request("POST", "/v1/maildomains",
                          {"name": "carol.example", "owner": "carol"}).status_code == 201
    box = client.request("POST", "/v1/mailboxes", {"address": "me@carol.example",
                                                   "password": "a fine password", "quota_mb": 5})
    assert box.status_code == 201 and "password" not in box.json and "hash" not in box.json
    assert client.request("GET", "/v1/mailboxes").json == {
        "items": [{"address": "me@carol.example", "quota_mb": 5, "forward": []}]}
    busy = client.request("DELETE", "/v1/users/carol")
    assert busy.status_code == 409 and "carol.example" in busy.json["error"]
    for path in ["/v1/mailboxes/me@carol.example", "/v1/maildomains/carol.example",
                 f"/v1/domains/carol.example/records/{rid}", "/v1/domains/carol.example",
                 "/v1/webdomains/carol.example", "/v1/users/carol"]:
        assert client.request("DELETE", path).status_code == 204, path
    assert client.request("GET", "/v1/webdomains/carol.example").status_code == 404


def test_user_data_lists_filtered_by_owner(agent):
    """`?owner=` (repeated for several) lists those owners' web domains, zones, mail domains and mailboxes
    (a mailbox by its mail domain's owner); without it the whole node's; a name no account could have
    is 400 naming `owner`."""
    require_binary("nginx", "named-checkzone", "exim", "doveconf", "useradd")
    _config, _reloads, client = agent
    for uid, owner in enumerate(("carol", "dave"), start=2001):
        assert client.request("POST", "/v1/users", {"name": owner, "uid": uid, "gid": uid,
                                                    "shell": "/bin/bash"}).status_code == 201
        name = f"{owner}.example"
        for path, body in (("/v1/webdomains", {"name": name, "owner": owner}),
                           ("/v1/domains", {"name": name, "owner": owner, "ip": "192.0.2.5"}),
                           ("/v1/maildomains", {"name": name, "owner": owner}),
                           ("/v1/mailboxes", {"address": f"me@{name}", "password": "a fine password"})):
            made = client.request("POST", path, body)
            assert made.status_code == 201, (path, made.json)
    for path, key in (("/v1/webdomains", "name"), ("/v1/domains", "name"), ("/v1/maildomains", "name"),
                      ("/v1/mailboxes", "address")):
        listed = {owner: [i[key] for i in client.request("GET", f"{path}?owner={owner}").json["items"]]
                  for owner in ("carol", "dave", "erin")}
        prefix = "me@" if key == "address" else ""
        assert listed == {"carol": [f"{prefix}carol.example"], "dave": [f"{prefix}dave.example"], "erin": []}, path
        assert len(client.request("GET", path).json["items"]) == 2, path
        assert len(client.request("GET", f"{path}?owner=carol&owner=dave&owner=erin").json["items"]) == 2, path
        bad = client.request("GET", f"{path}?owner=carol&owner=Carol%3B")
        assert bad.status_code == 400 and "owner" in bad.json["fields"], (path, bad.json)
