"""Domains → Domain names: a zone from the page, its records added and edited."""

from __future__ import annotations

from tests.conftest import csrf_from
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
