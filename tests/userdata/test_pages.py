"""The Domains, Mail and Accounts pages: forms go to the node, lists come from the index, HTMX fragments."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Users, csrf_from


@pytest.fixture
def alice(cluster, client, auth):
    """A node, and alice (a hosting user) logged in."""
    node_id = cluster.node("n1")
    cluster.user("alice")
    auth.login("alice", create=False)
    return node_id


def test_user_adds_a_web_domain_and_sees_it(client, cluster, alice):
    """The form creates the vhost on the node and the list shows it; HTMX gets only the table. With its DNS
    box ticked (as the page offers it) the domain's zone is made first; without, the zone is asked for."""
    page = client.get("/domains/web")
    assert page.status_code == 200 and "No web domains yet." in page.text
    refused = client.post("/domains/web", data={"name": "shop.example.com", "csrf_token": csrf_from(page.text)})
    assert refused.status_code == 400 and 'data-field="name"' in refused.text
    assert "create the zone example.com (or shop.example.com) first" in refused.text
    answer = client.post("/domains/web", data={"name": "shop.example.com", "aliases": "www.shop.example.com",
                                               "dns": "y", "csrf_token": csrf_from(page.text)},
                         follow_redirects=True)
    assert answer.status_code == 200 and "shop.example.com is live on n1" in answer.text
    assert (cluster.root(alice) / "etc/bind/hostfleet/shop.example.com.zone").exists()
    assert (cluster.root(alice) / "etc/nginx/hostfleet/alice/shop.example.com.conf").exists()
    fragment = client.get("/domains/web", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="webdomains-table"') and "shop.example.com" in fragment.text
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["Vary"]


def test_bad_name_shows_under_the_field(client, cluster, alice):
    """An invalid name: 400 with the message under the name field, nothing on the node."""
    before = cluster.tree(alice)
    page = client.get("/domains/web")
    answer = client.post("/domains/web", data={"name": "exa_mple.com; include /etc/passwd",
                                               "csrf_token": csrf_from(page.text)})
    assert answer.status_code == 400
    assert 'data-field="name"' in answer.text
    assert cluster.tree(alice) == before


def test_internationalised_names_are_shown_as_their_owner_types_them(client, cluster, alice):
    """A zone and a site typed in Cyrillic are stored and sent as A-labels, and every page shows them in
    Cyrillic (the A-label as a tooltip): the list, the zone's page, the site's page with its alias."""
    page = client.get("/domains/names")
    made = client.post("/domains/names", data={"name": "Пример.РФ", "ip": "192.0.2.1",
                                               "csrf_token": csrf_from(page.text)})
    assert made.status_code == 302, made.text
    assert (cluster.root(alice) / "etc/bind/hostfleet/xn--e1afmkfd.xn--p1ai.zone").exists()
    listed = client.get("/domains/names").text
    assert '<span title="xn--e1afmkfd.xn--p1ai">пример.рф</span>' in listed, listed
    zone = client.get(made.headers["Location"]).text
    assert "<title>пример.рф" in zone and "<h1><span title=\"xn--e1afmkfd.xn--p1ai\">пример.рф</span></h1>" in zone
    page = client.get("/domains/web")
    site = client.post("/domains/web", data={"name": "магазин.пример.рф", "aliases": "www.магазин.пример.рф",
                                             "csrf_token": csrf_from(page.text)})
    assert site.status_code == 302, site.text
    listed = client.get("/domains/web").text
    assert "Delete web domain магазин.пример.рф?" in listed
    link = re.search(r'<a href="(/domains/web/\d+)"><span title="xn--80aairftm.xn--e1afmkfd.xn--p1ai">', listed)
    assert link, listed
    shown = client.get(link.group(1)).text
    assert ">магазин.пример.рф</span></h1>" in shown and "www.магазин.пример.рф" in shown


def test_zone_page_adds_and_edits_records(client, cluster, alice):
    """A zone made from the page; a record added and edited; the serial shown rises."""
    page = client.get("/domains/names")
    made = client.post("/domains/names", data={"name": "example.org", "ip": "192.0.2.1",
                                               "csrf_token": csrf_from(page.text)})
    assert made.status_code == 302, made.text
    zone_url = made.headers["Location"]
    zone = client.get(zone_url)
    serial = int(zone.text.split('id="serial">')[1].split("<")[0])
    added = client.post(zone_url, data={"name": "api", "type": "A", "value": "192.0.2.7", "ttl": "300",
                                        "csrf_token": csrf_from(zone.text)}, follow_redirects=True)
    assert "192.0.2.7" in added.text
    serial_after = int(added.text.split('id="serial">')[1].split("<")[0])
    assert serial_after > serial
    fragment = client.get(zone_url, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="zone">')


def test_mail_pages(client, cluster, alice):
    """A mail domain and a mailbox from the pages; the password never appears in any answer."""
    cluster.zones("alice", "example.net")
    page = client.get("/mail/domains")
    assert client.post("/mail/domains", data={"name": "example.net", "csrf_token": csrf_from(page.text)}
                       ).status_code == 302
    page = client.get("/mail/mailboxes")
    made = client.post("/mail/mailboxes", data={"address": "box@example.net", "password": "sekret password 1",
                                                "quota_mb": "50", "csrf_token": csrf_from(page.text)},
                       follow_redirects=True)
    assert "box@example.net" in made.text and "sekret password 1" not in made.text
    assert client.get("/mail/mailboxes", headers={"HX-Request": "true"}).text.lstrip().startswith(
        '<div id="mailboxes-table"')


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
    assert "0 / 100 /" in location.text
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
    from tests.userdata.conftest import basic

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


LIST_PAGES = [
    # (page, index model, label column, row id prefix, opened at (None: no page of its own))
    ("/domains/web", "WebDomainIndex", "name", "webdomain", "/domains/web/{id}"),
    ("/domains/names", "DomainIndex", "name", "zone", "/domains/names/{id}"),
    ("/mail/domains", "MailDomainIndex", "name", "maildomain", None),
    ("/mail/mailboxes", "MailboxIndex", "address", "mailbox", "/mail/mailboxes/{id}"),
]


@pytest.mark.parametrize(("path", "model", "label", "prefix", "opened_at"), LIST_PAGES,
                         ids=[p[1] for p in LIST_PAGES])
def test_every_list_marks_a_create_in_flight(app, client, cluster, alice, path, model, label, prefix, opened_at):
    """A row whose node has yet to confirm it shows "creating…" with no link and no Delete, and the table
    refreshes itself every 5 s while one is listed; a confirmed row has both, and no refresh is set."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app import models
    from app.extensions import db

    index = getattr(models, model)
    with app.app_context():
        owner = db.session.scalar(select(models.User.id).where(models.User.name == "alice"))
        ready = index(**{label: "ready@example.org" if label == "address" else "ready.example.org"},
                      owner_id=owner, node_id=alice)
        claim = index(**{label: "new@example.org" if label == "address" else "new.example.org"},
                      owner_id=owner, node_id=alice, claimed_at=datetime.now(UTC))
        db.session.add_all([ready, claim])
        db.session.commit()
        ids = ready.id, claim.id

    def row(text: str, item_id: int) -> str:
        return text[text.index(f'id="{prefix}-{item_id}"'):].split("</tr>")[0]

    table = client.get(path, headers={"HX-Request": "true"}).text
    assert table.lstrip().startswith("<div") and "every 5s" in table
    confirmed, creating = row(table, ids[0]), row(table, ids[1])
    assert 'data-state="creating"' in creating and "<a " not in creating and "Delete" not in creating, creating
    assert 'data-state="creating"' not in confirmed and "Delete" in confirmed, confirmed
    if opened_at:
        assert f'href="{opened_at.format(id=ids[0])}"' in confirmed, confirmed

    with app.app_context():
        db.session.execute(db.update(index).where(index.id == ids[1]).values(claimed_at=None))
        db.session.commit()
    table = client.get(path, headers={"HX-Request": "true"}).text
    assert "every 5s" not in table and 'data-state="creating"' not in table and "Delete" in row(table, ids[1])
