"""Suspend/resume reaches every node holding the user's roles (reported per node); mailbox forwarding proxied."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import csrf_from, listening_on, wait_until
from tests.userdata.conftest import basic


def _user_id(app, name: str) -> int:
    from app.extensions import db
    from app.models import User

    with app.app_context():
        return db.session.scalar(select(User.id).where(User.name == name))


def test_suspend_and_resume_on_every_node_reported(app, client, cluster, users):
    """Sites on one node, mail on another: both get the suspension; a stopped node is reported, then repeated."""
    web = cluster.node("web1", roles=("web",))
    mail = cluster.node("mail1", roles=("dns", "mail"))
    users.make("root", admin=True)
    cluster.user("sue")
    sue = basic("sue")
    cluster.zones("sue", "sue.example.com", "sue.example.net")
    assert client.post("/api/v1/webdomains", json={"name": "sue.example.com", "php": True},
                       headers=sue).status_code == 201
    assert client.post("/api/v1/maildomains", json={"name": "sue.example.net"}, headers=sue).status_code == 201
    assert client.post("/api/v1/mailboxes", json={"address": "me@sue.example.net", "password": "long enough"},
                       headers=sue).status_code == 201
    sue_id = _user_id(app, "sue")
    vhost = cluster.root(web) / "etc/nginx/hostfleet/sue/sue.example.com.conf"
    passwd = cluster.root(mail) / "etc/dovecot/hostfleet/passwd"

    done = client.put(f"/api/v1/users/{sue_id}", json={"active": False}, headers=basic("root"))
    assert done.status_code == 200, done.json
    assert done.json["active"] is False
    assert sorted((n["node"], n["outcome"]) for n in done.json["nodes"]) == [("mail1", "applied"), ("web1", "applied")]
    assert "return 503" in vhost.read_text()
    assert "nologin=y" in passwd.read_text()

    cluster.agent_nodes.agents[mail].stop()
    back = client.put(f"/api/v1/users/{sue_id}", json={"active": True}, headers=basic("root"))
    assert back.status_code == 200 and back.json["active"] is True
    outcomes = {n["node"]: n for n in back.json["nodes"]}
    assert outcomes["web1"]["outcome"] == "applied" and "return 503" not in vhost.read_text()
    assert outcomes["mail1"]["outcome"] == "unavailable" and "mail1" in outcomes["mail1"]["error"]
    assert "nologin=y" in passwd.read_text()
    assert client.get("/api/v1/webdomains", headers=sue).status_code == 200

    cluster.agent_nodes.agents[mail].start()
    wait_until(listening_on(cluster.agent_nodes.agents[mail].port), 15, what="the mail agent")
    again = client.put(f"/api/v1/users/{sue_id}", json={"active": True}, headers=basic("root"))
    assert {n["node"]: n["outcome"] for n in again.json["nodes"]} == {"web1": "applied", "mail1": "applied"}
    assert "nologin" not in passwd.read_text()


def test_data_placed_after_the_suspension_is_suspended_too(app, client, cluster, users):
    """Suspended while holding only sites; then allowed mail: the mail role is placed when an
    administrator creates the first mailbox, on a node that already knows the owner is suspended."""
    cluster.node("web1", roles=("web",))
    mail = cluster.node("mail1", roles=("dns", "mail"))
    users.make("root", admin=True)
    cluster.user("sam", roles=("web",))
    sam_id = _user_id(app, "sam")
    root = basic("root")
    suspended = client.put(f"/api/v1/users/{sam_id}", json={"active": False}, headers=root)
    assert [(n["node"], n["outcome"]) for n in suspended.json["nodes"]] == [("web1", "applied")]
    assert client.put(f"/api/v1/users/{sam_id}", json={"roles": ["web", "mail"]}, headers=root).status_code == 200
    assert client.post("/api/v1/maildomains", json={"name": "sam.example.net", "owner": "sam", "dns": False},
                       headers=root).status_code == 201
    assert client.post("/api/v1/mailboxes", json={"address": "me@sam.example.net", "password": "long enough"},
                       headers=root).status_code == 201
    passwd = cluster.root(mail) / "etc/dovecot/hostfleet/passwd"
    assert "nologin=y" in passwd.read_text()
    back = client.put(f"/api/v1/users/{sam_id}", json={"active": True}, headers=root)
    assert sorted((n["node"], n["outcome"]) for n in back.json["nodes"]) == [("mail1", "applied"), ("web1", "applied")]
    assert "nologin" not in passwd.read_text()


def test_suspend_from_the_page_flashes_the_node_report(app, client, cluster, users, auth):
    """The Suspend button reaches the node and says where it was applied."""
    node = cluster.node("n1")
    cluster.user("pat")
    cluster.zones("pat", "pat.example.com")
    assert client.post("/api/v1/webdomains", json={"name": "pat.example.com"}, headers=basic("pat")).status_code == 201
    auth.login("root", admin=True)
    pat_id = _user_id(app, "pat")
    token = csrf_from(client.get(f"/accounts/users/{pat_id}").text)
    page = client.post(f"/accounts/users/{pat_id}/suspend", data={"csrf_token": token}, follow_redirects=True)
    assert page.status_code == 200
    assert b"User pat suspended. Applied on n1." in page.data
    assert "return 503" in (cluster.root(node) / "etc/nginx/hostfleet/pat/pat.example.com.conf").read_text()
    page = client.post(f"/accounts/users/{pat_id}/resume", data={"csrf_token": token}, follow_redirects=True)
    assert b"User pat resumed. Applied on n1." in page.data


def test_mailbox_forwarding_through_the_api(app, client, cluster, users):
    """forward on create and update goes to the node; bad addresses are a 400 naming `forward`, nothing sent."""
    node = cluster.node("n1")
    cluster.user("fay")
    fay = basic("fay")
    cluster.zones("fay", "fay.example.net")
    assert client.post("/api/v1/maildomains", json={"name": "fay.example.net"}, headers=fay).status_code == 201
    made = client.post("/api/v1/mailboxes", json={"address": "a@fay.example.net", "password": "long enough",
                                                  "forward": ["b@fay.example.net"]}, headers=fay)
    assert made.status_code == 201, made.json
    assert made.json["forward"] == ["b@fay.example.net"]
    forwards = cluster.root(node) / "etc/exim4/hostfleet/forwards"
    assert forwards.read_text() == "a@fay.example.net: b@fay.example.net\n"

    before = cluster.tree(node)
    for bad in (["not an address"], ["a@fay.example.net"], [f"x{i}@example.org" for i in range(21)]):
        refused = client.put(f"/api/v1/mailboxes/{made.json['id']}", json={"forward": bad}, headers=fay)
        assert refused.status_code == 400 and "forward" in refused.json["fields"], refused.json
    assert cluster.tree(node) == before

    changed = client.put(f"/api/v1/mailboxes/{made.json['id']}", json={"forward": ["Out@Example.org"]}, headers=fay)
    assert changed.status_code == 200 and changed.json["forward"] == ["out@example.org"]
    assert client.get(f"/api/v1/mailboxes/{made.json['id']}", headers=fay).json["forward"] == ["out@example.org"]
    assert forwards.read_text() == "a@fay.example.net: out@example.org\n"
