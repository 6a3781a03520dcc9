"""Domains → Domain names: a zone from the page, its records added and edited."""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.userdata.conftest import basic
from tests.userdata_pages import check_marks_create_in_flight


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


def test_a_create_in_flight_is_marked(app, client, cluster, alice):
    check_marks_create_in_flight(app, client, alice,
                                 "/domains/names", "DomainIndex", "name", "zone", "/domains/names/{id}")


def test_an_internationalised_zone_reads_in_unicode_and_is_found_by_it(client, cluster, alice):
    """пример.рф typed on the page is stored as xn--e1afmkfd.xn--p1ai, and the person sees пример.рф: in the
    flash, the page's records, the list and its delete question; a search typed in Cyrillic finds it; the
    API keeps the A-label in `name` and adds `name_unicode`."""
    page = client.get("/domains/names")
    made = client.post("/domains/names", data={"name": "пример.рф", "ip": "192.0.2.1",
                                               "csrf_token": csrf_from(page.text)}, follow_redirects=True)
    assert "Domain name пример.рф is served by n1." in made.text, made.text
    assert "ns1.пример.рф." in made.text
    assert "xn--" not in re.sub(r'title="[^"]*"', "", made.text), "A-labels only in the tooltips"
    cluster.zones("alice", "other-zone.com")
    for query in ("пример", "пример.рф", "ПРИМЕР"):
        found = client.get("/domains/names", query_string={"q": query}).text
        assert ">пример.рф</span>" in found and "other-zone.com" not in found, query
        assert "Delete domain name пример.рф?" in found
    assert "пример.рф" not in client.get("/domains/names", query_string={"q": "other"}).text
    items = client.get("/api/v1/domains", headers=basic("alice")).json["items"]
    assert {i["name"]: i["name_unicode"] for i in items} == {"xn--e1afmkfd.xn--p1ai": "пример.рф",
                                                             "other-zone.com": "other-zone.com"}
