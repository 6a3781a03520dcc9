"""A user's disk quota (limits.disk_mb): what their files take on the node, measured by its agent, shown to
the admin, and new sites and mail refused once it is used up."""

from __future__ import annotations

import re

from tests.conftest import Users, csrf_from, wait_until
from tests.userdata.conftest import basic

MIB = 2**20


def measured(cluster, client, user_id: int, auth) -> float | None:
    """One statistics poll, then the user's disk use in MB as the API answers it (None: not measured yet)."""
    cluster.poll()
    return client.get(f"/api/v1/users/{user_id}", headers=auth).json["disk_used_mb"]


def test_used_up_quota_refuses_new_sites_and_mail_and_shows_on_the_user(app, client, cluster, monkeypatch):
    """Under the quota new data is accepted; past it (files written on the node, as an upload would) the next
    measurement reaches the master, which refuses new sites and mailboxes naming the quota, sends nothing,
    and shows the use on the user's page."""
    monkeypatch.setenv("HOSTFLEET_AGENT_USAGE_REFRESH_S", "0.5")  # the node's agent measures every 0.5 s
    node_id = cluster.node("n1")
    alice = cluster.user("alice", limits={"disk_mb": 2})
    headers = basic("alice")
    cluster.zones("alice", "example.com", "alice.example.net")  # zones take no disk space
    site = client.post("/api/v1/webdomains", json={"name": "alice.example.com"}, headers=headers)
    assert site.status_code == 201, site.json
    admin = basic("root-admin")
    cluster.user("root-admin", admin=True)

    # Under the quota: the measurement comes in with the polls and new data is accepted.
    wait_until(lambda: measured(cluster, client, alice, admin) is not None, 30, interval=0.2,
               what="the agent's first disk measurement")
    assert measured(cluster, client, alice, admin) < 2  # the site's index page: a few KB
    assert client.post("/api/v1/maildomains", json={"name": "alice.example.net"}, headers=headers).status_code == 201

    # Her site's files grow past 2 MB (as an upload over SFTP would): the next measurement says so.
    (cluster.root(node_id) / "home/alice/video.bin").write_bytes(b"x" * (3 * MIB))
    wait_until(lambda: (measured(cluster, client, alice, admin) or 0) >= 3, 30, interval=0.2,
               what="the agent to measure the new file")

    before = cluster.tree(node_id)
    refused = client.post("/api/v1/webdomains", json={"name": "second.example.com"}, headers=headers)
    assert refused.status_code == 409, refused.json
    assert refused.json["fields"] == {"name": "disk quota of 2 MB used up"}
    assert "of their 2 MB disk quota; nothing was created" in refused.json["error"]
    box = client.post("/api/v1/mailboxes", json={"address": "info@alice.example.net", "password": "a long secret"},
                      headers=headers)
    assert box.status_code == 409, box.json
    assert box.json["fields"] == {"address": "disk quota of 2 MB used up"}
    assert cluster.tree(node_id) == before, "nothing was sent to the node"

    client.post("/login", data={"username": "root-admin", "password": Users.PASSWORD,
                                "csrf_token": csrf_from(client.get("/login").text)})
    page = client.get(f"/accounts/users/{alice}").text
    assert re.search(r'data-field="disk_used">[3-9][.0-9]* MB of 2 MB<', page), page
    listed = {u["name"]: u["disk_used_mb"] for u in client.get("/api/v1/users", headers=admin).json["items"]}
    assert listed["alice"] == measured(cluster, client, alice, admin) and listed["alice"] >= 3, listed
    assert listed["root-admin"] == 0.0, "placed on the measured node, with no files there"
    users_page = client.get("/accounts/users").text
    assert re.search(rf'<tr id="user-{alice}">.*?data-field="disk_used">[3-9][.0-9]* MB of 2 MB<', users_page,
                     re.S), users_page
