"""Accounts → Users: the admin creates a user from the page; Location shows the placement. And every
user-data page an administrator opens answers the whole page, or its fragment for HTMX."""

from __future__ import annotations

from tests.conftest import Users, csrf_from
from tests.userdata.conftest import basic


def test_admin_users_page_creates_and_locates(client, cluster, auth):
    """The admin creates a user from the page; Location shows the node with the scores."""
    cluster.node("n1")
    auth.login("root", admin=True)
    page = client.get("/accounts/users")
    made = client.post("/accounts/users", data={"name": "erin", "password": Users.PASSWORD, "level": "user",
                                                "role_web": "y", "role_mail": "y", "limit_webdomains": "3",
                                                "csrf_token": csrf_from(page.text)})
    assert made.status_code == 302, made.text
    detail = client.get(made.headers["Location"])
    assert "erin" in detail.text and 'id="location-web"' in detail.text and "n1" in detail.text
    location = client.get(made.headers["Location"] + "/location")
    assert "n1: 0 users on weight 100" in location.text and "chosen (the lowest score)" in location.text
    fragment = client.get(made.headers["Location"] + "/location", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="location">')
    listing = client.get("/accounts/users", headers={"HX-Request": "true"})
    assert listing.text.lstrip().startswith('<div id="users-table"') and "erin" in listing.text


FRAGMENTS = [
    ("/domains/web", "webdomains-table"), ("/domains/web/{web}", "webdomain"),
    ("/domains/names", "zones-table"), ("/domains/names/{zone}", "zone"),
    ("/mail/domains", "maildomains-table"), ("/mail/mailboxes", "mailboxes-table"),
    ("/mail/mailboxes/{mailbox}", "mailbox"),
    ("/accounts/users", "users-table"), ("/accounts/users/{user}", "user"),
    ("/accounts/users/{user}/location", "location"),
]


def test_every_page_answers_page_or_fragment(app, client, cluster, auth):
    """Each user-data page: the whole page without HX-Request, only its fragment with it."""
    cluster.node("n1")
    auth.login("root", admin=True)
    cluster.user("alice")
    admin = basic("root")
    ids = {
        "web": client.post("/api/v1/webdomains", json={"name": "f.example.com", "owner": "alice"},
                           headers=admin).json["id"],
        "zone": client.post("/api/v1/domains", json={"name": "f.example.org", "owner": "alice", "ip": "192.0.2.1"},
                            headers=admin).json["id"],
    }
    client.post("/api/v1/maildomains", json={"name": "f.example.net", "owner": "alice"}, headers=admin)
    ids["mailbox"] = client.post("/api/v1/mailboxes", json={"address": "a@f.example.net", "password": "long enough"},
                                 headers=admin).json["id"]
    ids["user"] = client.get("/api/v1/users", headers=admin).json["items"][0]["id"]
    for path, fragment_id in FRAGMENTS:
        url = path.format(**ids)
        page = client.get(url)
        fragment = client.get(url, headers={"HX-Request": "true"})
        assert page.status_code == fragment.status_code == 200, url
        assert "<html" in page.text and f'id="{fragment_id}"' in page.text, url
        assert "<html" not in fragment.text and fragment.text.lstrip().startswith(f'<div id="{fragment_id}"'), url
        assert "HX-Request" in fragment.headers["Vary"], url

