"""Home: a customer's usage against each limit (the API's numbers), their sites and operations."""

from __future__ import annotations

import re

from tests.conftest import wait_until
from tests.userdata.conftest import basic

LIMITS = {"webdomains": 5, "domains": 3, "mailboxes": 1, "disk_mb": 100}


def usage_rows(text: str) -> dict[str, tuple[str, str, str]]:
    """Per limit key: (used, limit, words) as the page shows them."""
    rows = re.findall(r'<tr id="usage-([a-z_]+)" data-used="([^"]*)" data-limit="([^"]*)">.*?'
                      r'id="usage-\1-words">([^<]*)</td>', text, re.S)
    return {key: (used, limit, words) for key, used, limit, words in rows}


def test_customer_lands_on_home_with_the_api_numbers(app, client, cluster, auth, monkeypatch):
    """alice's limits and usage on the page are those GET /api/v1/users/<id> and her lists give, in words."""
    monkeypatch.setenv("HOSTFLEET_AGENT_USAGE_REFRESH_S", "0.5")  # the node's agent measures every 0.5 s
    node_id = cluster.node("n1")
    alice_id = cluster.user("alice", limits=LIMITS)
    cluster.zones("alice", "alice.example", "alice.example.net")
    for name in ("alice.example", "www.alice.example", "shop.alice.example"):
        made = client.post("/api/v1/webdomains", json={"name": name}, headers=basic("alice"))
        assert made.status_code == 201, made.json
    (cluster.root(node_id) / "home/alice/video.bin").write_bytes(b"x" * (30 * 2**20))

    def disk_measured():
        cluster.poll()
        return (client.get(f"/api/v1/users/{alice_id}", headers=basic("alice")).json["disk_used_mb"] or 0) >= 30

    wait_until(disk_measured, 30, interval=0.2, what="the agent to measure alice's files")
    auth.login("alice", create=False)
    start = client.get("/")
    assert start.status_code == 302 and start.headers["Location"].endswith("/home")
    page = client.get("/home")
    assert page.status_code == 200
    shown = usage_rows(page.text)
    api = client.get(f"/api/v1/users/{alice_id}", headers=basic("alice")).json
    assert api["effective_limits"] == LIMITS
    counts = {kind: client.get(f"/api/v1/{kind}", headers=basic("alice")).json
              for kind in ("webdomains", "domains", "maildomains")}
    assert shown["webdomains"][:2] == (str(len(counts["webdomains"]["items"])), "5") == ("3", "5")
    assert shown["webdomains"][2] == "3 of 5 web domains"
    assert shown["domains"] == ("2", "3", "2 of 3 domain names")
    assert shown["maildomains"] == ("0", "", "0 mail domains, no limit")
    assert shown["mailboxes"] == ("0", "1", "0 of 1 mailbox")
    disk = api["disk_used_mb"]
    assert 30 <= disk < 40 and shown["disk_mb"][:2] == (str(disk), "100")
    assert shown["disk_mb"][2] == f"{disk:g} of 100 MB of disk"
    assert f'id="usage-disk_mb-bar" min="0" max="100" low="75" high="90" optimum="0" value="{round(disk)}"' in page.text
    assert 'id="usage-webdomains-bar" min="0" max="100"' in page.text and 'value="60"' in page.text
    # Her sites with their state and the address their DNS points to; no node name.
    for name in ("alice.example", "www.alice.example", "shop.alice.example"):
        assert name in page.text
    assert page.text.count(">online</span>") == 3 and "127.0.0.1" in page.text
    fragment = client.get("/home", headers={"HX-Request": "true"}).text  # the page, without its random tokens
    assert "127.0.0.1" in fragment and not re.search(r"\bn1\b", fragment)
    cluster.set_state(node_id, "unavailable")
    assert client.get("/home").text.count(">unavailable</span>") == 3


def test_home_shows_only_the_users_own_things(app, client, cluster, auth):
    """bob's home lists none of alice's sites or operations, and his own limits (none: 'no limit')."""
    from app.extensions import db
    from app.models import Operation

    cluster.node("n1")
    alice_id = cluster.user("alice", limits=LIMITS)
    cluster.user("bob")
    cluster.zones("alice", "alice.example")
    assert client.post("/api/v1/webdomains", json={"name": "alice.example"},
                       headers=basic("alice")).status_code == 201
    with app.app_context():
        db.session.add(Operation(kind="test", title="alice's change", created_by_id=alice_id, params={}))
        db.session.commit()
    auth.login("bob", create=False)
    page = client.get("/home").text
    assert "alice.example" not in page and "alice's change" not in page and "No sites yet" in page
    assert usage_rows(page)["webdomains"] == ("0", "", "0 web domains, no limit")
    client.delete_cookie("session")
    auth.login("alice", create=False)
    page = client.get("/home").text
    assert "alice.example" in page and "alice&#39;s change" in page


def test_home_page_or_fragment_and_the_customer_menu(client, cluster, auth):
    """The whole page, or its fragment for HTMX; a customer's sidebar has Home, an administrator's not;
    admin pages stay closed to the customer."""
    cluster.node("n1")
    cluster.user("alice")
    auth.login("alice", create=False)
    page = client.get("/home")
    assert "<html" in page.text and '>Home</a>' in page.text and '>My account</a>' in page.text
    fragment = client.get("/home", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and fragment.text.lstrip().startswith('<div id="home">')
    for path in ("/accounts/users", "/cluster/nodes", f"/accounts/users/{1}"):
        assert client.get(path).status_code in (403, 404), path
    client.delete_cookie("session")
    auth.login("root", admin=True)
    admin_page = client.get("/cluster/nodes").text
    assert '>Home</a>' not in admin_page and '>My account</a>' in admin_page
