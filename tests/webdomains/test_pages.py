"""Domains → Web domains: the form goes to the node, the list comes from the index, HTMX gets the table."""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.userdata_pages import check_marks_create_in_flight


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


def test_a_create_in_flight_is_marked(app, client, cluster, alice):
    check_marks_create_in_flight(app, client, alice,
                                 "/domains/web", "WebDomainIndex", "name", "webdomain", "/domains/web/{id}")


def test_bulk_delete_of_another_users_rows_deletes_nothing_and_names_nothing(app, client, cluster, alice, auth):
    """bob sends alice's web domain's id to bulk delete: the question and the report show only its number,
    each row is refused as the single delete refuses it, and alice's site stays."""
    cluster.zones("alice", "alice-bulk.example")
    page = client.get("/domains/web")
    assert client.post("/domains/web", data={"name": "alice-bulk.example", "csrf_token": csrf_from(page.text)}
                       ).status_code == 302
    item_id = re.search(r'name="ids" value="(\d+)"', client.get("/domains/web").text).group(1)
    cluster.user("bob")
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/domains/web").text)})
    auth.login("bob", create=False)
    token = csrf_from(client.get("/domains/web").text)
    asked = client.post("/domains/web/delete-selected", data={"ids": item_id, "step": "ask", "csrf_token": token})
    assert asked.status_code == 200 and f"#{item_id}" in asked.text and "alice-bulk" not in asked.text
    done = client.post("/domains/web/delete-selected", data={"ids": item_id, "step": "delete", "csrf_token": token})
    assert "0 of 1 web domains deleted" in done.text and "alice-bulk" not in done.text
    assert f'<tr id="outcome-{item_id}" data-deleted="no">' in done.text
    from app.extensions import db
    from app.models import WebDomainIndex

    with app.app_context():
        assert db.session.get(WebDomainIndex, int(item_id)) is not None


def test_php_page(client, cluster, alice):
    """(A short name: the test's folder is in the path of the site pool's socket.) The site's page takes PHP
    settings (empty fields are the server's defaults), shows them once saved,
    and puts a bad size under its own field with nothing changed on the node."""
    cluster.zones("alice", "ini.example")
    page = client.get("/domains/web")
    made = client.post("/domains/web", data={"name": "ini.example", "php": "y", "csrf_token": csrf_from(page.text)})
    assert made.status_code == 302, made.text
    site = re.search(r'<a href="(/domains/web/\d+)">', client.get("/domains/web").text).group(1)
    shown = client.get(site)
    assert "PHP settings of this site" in shown.text
    saved = client.post(site, data={"php": "y", "memory_limit": "512M", "upload_max_filesize": "",
                                    "post_max_size": "", "max_execution_time": "120", "display_errors": "off",
                                    "csrf_token": csrf_from(shown.text)}, follow_redirects=True)
    assert saved.status_code == 200, re.findall(r"(?:error|form-errors)[^<]*<[^<]*", saved.text)
    assert "memory_limit 512M" in saved.text and "max_execution_time 120" in saved.text
    assert 'value="512M"' in saved.text
    before = cluster.tree(alice)
    refused = client.post(site, data={"php": "y", "memory_limit": "lots", "csrf_token": csrf_from(saved.text)})
    assert refused.status_code == 400 and 'data-field="memory_limit"' in refused.text
    assert "must be a size such as 256M or 1G" in refused.text
    assert cluster.tree(alice) == before
