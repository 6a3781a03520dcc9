"""Validation messages written for a hosting customer: each mistake typed into the API and into the page's
form gets the same words naming the field, saying what is wrong and what to type instead, never a codec's
or a parser's message; nothing is written."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from tests.conftest import csrf_from
from tests.userdata.conftest import basic

# Words that come from a library, not from the panel: none of them may reach a customer.
PARSER_WORDS = ("Codepoint", "codepoint", "Not a valid", "not a valid integer", "malformed", "must be an integer",
                "IDNA", "Traceback")

ZONE = "acme-x.com"
LONG_LABEL = "a" * 64

# (what is sent: a zone or a record, the fields typed, the field at fault, the words under it)
CASES = [
    ("zone", {"name": "bad_domain!.com"}, "name",
     "'_' is not allowed in a domain name: use letters, digits, hyphens and dots, like my-shop.example.com"),
    ("zone", {"name": "https://acme-x.com/"}, "name", "leave out https:// and type just the name, like example.com"),
    ("zone", {"name": "acme-x.com/"}, "name", "a domain name has no path: leave out the / and what follows it"),
    ("zone", {"name": ""}, "name", "is empty: type a domain name, like example.com"),
    ("zone", {"name": "acme x.com"}, "name",
     "must not contain spaces: type one name, with hyphens between words, like my-shop.example.com"),
    ("zone", {"name": f"{LONG_LABEL}.com"}, "name",
     "the part 'aaaaaaaaaaaaaaaa…' is 64 characters long: each part between dots may have at most 63"),
    ("zone", {"name": "acme-y.com", "ip": "300.1.1.1"}, "ip",
     "'300.1.1.1' is not an IP address: type an IPv4 address like 192.0.2.10 or an IPv6 address like 2001:db8::10"),
    ("zone", {"name": "acme-y.com", "ip": "1.2.3"}, "ip",
     "'1.2.3' is not an IP address: type an IPv4 address like 192.0.2.10 or an IPv6 address like 2001:db8::10"),
    ("record", {"name": "@", "type": "MX", "value": "mail.acme-x.com."}, "priority",
     "an MX record needs a priority: a number from 0 to 65535, lower is tried first (10 is usual)"),
    ("record", {"name": "@", "type": "MX", "value": "mail.acme-x.com.", "priority": "ten"}, "priority",
     "must be a whole number, like 10"),
    ("record", {"name": "@", "type": "A", "value": "300.1.1.1"}, "value",
     "'300.1.1.1' is not valid for an A record: type an IPv4 address, like 192.0.2.10"),
    ("record", {"name": "shop front", "type": "A", "value": "192.0.2.1"}, "name",
     "must not contain spaces: type a name like www or mail (@ for the zone itself)"),
    ("record", {"name": f"{LONG_LABEL}", "type": "A", "value": "192.0.2.1"}, "name",
     "the part 'aaaaaaaaaaaaaaaa…' is 64 characters long: each part between dots may have at most 63"),
    ("record", {"name": "", "type": "A", "value": "192.0.2.1"}, "name",
     "is empty: type @ for the zone itself, or a name like www or mail"),
]
IDS = [f"{where}-{field}-{sent.get(field)!r}" for where, sent, field, _ in CASES]


@pytest.fixture
def zone_id(client, cluster, alice):
    """alice's zone acme-x.com, made through the API."""
    cluster.zones("alice", ZONE)
    return client.get("/api/v1/domains", headers=basic("alice")).json["items"][0]["id"]


def _under_field(page: str, field: str) -> list[str]:
    """The messages a page shows under one field, without the field's label."""
    return [m.split(": ", 1)[1] for m in re.findall(rf'<span class="error"[^>]*data-field="{field}">([^<]*)</span>',
                                                   page)]


@pytest.mark.parametrize("where, sent, field, words", CASES, ids=IDS)
def test_a_mistake_gets_the_same_words_in_the_api_and_under_the_form_field(client, cluster, zone_id, where, sent,
                                                                          field, words):
    before = cluster.tree(zone_id)
    body = {"ip": "192.0.2.1", **sent} if where == "zone" else dict(sent)
    url = "/api/v1/domains" if where == "zone" else f"/api/v1/domains/{zone_id}/records"
    answer = client.post(url, json=body, headers=basic("alice"))
    assert 400 <= answer.status_code < 500, answer.json
    assert answer.json["fields"] == {field: words}, answer.json
    assert not any(w in answer.json["error"] for w in PARSER_WORDS), answer.json

    page_url = "/domains/names" if where == "zone" else f"/domains/names/{zone_id}"
    page = client.get(page_url)
    shown = client.post(page_url, data={**body, "csrf_token": csrf_from(page.text)})
    assert shown.status_code == 400
    assert _under_field(shown.text, field) == [str(escape(words))], shown.text
    assert not any(w in shown.text for w in PARSER_WORDS)
    assert cluster.tree(zone_id) == before, "nothing reached the node"


def test_a_txt_value_over_255_characters_is_taken_without_quotes_as_two_strings(client, cluster, zone_id):
    """DNS strings hold 255 bytes each: a longer TXT value (a DKIM key) typed as it is, with no quotes, is
    split for the customer rather than refused."""
    value = "v=DKIM1; k=rsa; p=" + "A" * 300
    made = client.post(f"/api/v1/domains/{zone_id}/records", json={"name": "mail._domainkey", "type": "TXT",
                                                                    "value": value}, headers=basic("alice"))
    assert made.status_code == 201, made.json
    assert made.json["value"] == f'"{value[:255]}" "{value[255:]}"'
    page = client.get(f"/domains/names/{zone_id}")
    again = client.post(f"/domains/names/{zone_id}", data={"name": "x._domainkey", "type": "TXT", "value": value,
                                                            "csrf_token": csrf_from(page.text)})
    assert again.status_code == 302


@pytest.fixture
def two_mailboxes(client, cluster, auth):
    """carol, whose plan allows two mailboxes, logged in with both made and their mail domain."""
    cluster.node("n1")
    cluster.user("carol", limits={"mailboxes": 2})
    cluster.zones("carol", "carol-mail.com")
    auth.login("carol", create=False)
    assert client.post("/api/v1/maildomains", json={"name": "carol-mail.com"}, headers=basic("carol")
                       ).status_code == 201
    for local in ("a", "b"):
        made = client.post("/api/v1/mailboxes", headers=basic("carol"),
                           json={"address": f"{local}@carol-mail.com", "password": "a long secret"})
        assert made.status_code == 201, made.json


@pytest.mark.parametrize("address, words", [
    ("c@carol-mail.com", "your plan allows 2 mailboxes; delete one or ask your provider for a larger plan"),
    ("a@carol-mail.com", "a@carol-mail.com exists"),
], ids=["over-the-limit", "a-duplicate-at-the-limit-is-a-duplicate"])
def test_at_the_limit_the_plan_and_the_next_step_are_named_and_a_duplicate_is_named_first(client, two_mailboxes,
                                                                                          address, words):
    answer = client.post("/api/v1/mailboxes", json={"address": address, "password": "a long secret"},
                         headers=basic("carol"))
    assert answer.status_code == 409 and answer.json["fields"] == {"address": words}, answer.json
    page = client.get("/mail/mailboxes")
    shown = client.post("/mail/mailboxes", data={"address": address, "password": "a long secret",
                                                 "csrf_token": csrf_from(page.text)})
    assert 400 <= shown.status_code < 500
    assert _under_field(shown.text, "address") == [str(escape(words))], shown.text
    assert "mailboxs" not in shown.text
