"""Mail → Mailboxes (with the mail domain they need): the password never appears in an answer."""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.userdata.conftest import basic
from tests.userdata_pages import check_marks_create_in_flight


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


def test_a_create_in_flight_is_marked(app, client, cluster, alice):
    check_marks_create_in_flight(app, client, alice,
                                 "/mail/mailboxes", "MailboxIndex", "address", "mailbox", "/mail/mailboxes/{id}")


def test_a_refused_create_keeps_what_was_typed_except_the_password(client, cluster, alice):
    """The form comes back with the address and quota typed and the refusal under its field; the
    password is never sent back."""
    page = client.get("/mail/mailboxes")
    refused = client.post("/mail/mailboxes", data={"address": "box@no-such-domain.example", "quota_mb": "75",
                                                    "password": "sekret password 2",
                                                    "csrf_token": csrf_from(page.text)})
    assert refused.status_code in (400, 404, 409, 422), refused.status_code
    assert 'value="box@no-such-domain.example"' in refused.text and 'value="75"' in refused.text
    assert "sekret password 2" not in refused.text
    assert 'class="error"' in refused.text


def test_mail_in_an_internationalised_domain_reads_in_unicode(client, cluster, alice):
    """A mail domain and a mailbox in пример.рф: the flashes, the lists, their delete questions, the
    mailbox's page and its forwarding show пример.рф; a search for the address typed in Cyrillic finds it;
    the API adds `address_unicode` beside the A-label address."""
    cluster.zones("alice", "пример.рф")
    page = client.get("/mail/domains")
    made = client.post("/mail/domains", data={"name": "пример.рф", "csrf_token": csrf_from(page.text)},
                       follow_redirects=True)
    assert "Mail domain пример.рф receives mail on n1." in made.text, made.text
    assert ">пример.рф</span>" in made.text and "Delete mail domain пример.рф?" in made.text
    page = client.get("/mail/mailboxes")
    box = client.post("/mail/mailboxes", data={"address": "info@пример.рф", "password": "a long secret",
                                               "csrf_token": csrf_from(page.text)}, follow_redirects=True)
    assert "Mailbox info@пример.рф created." in box.text, box.text
    for query in ("info@пример.рф", "пример"):
        found = client.get("/mail/mailboxes", query_string={"q": query}).text
        assert ">info@пример.рф</span>" in found and "Delete mailbox info@пример.рф?" in found, query
    item = client.get("/api/v1/mailboxes", headers=basic("alice")).json["items"][0]
    assert (item["address"], item["address_unicode"]) == ("info@xn--e1afmkfd.xn--p1ai", "info@пример.рф")
    box_url = f"/mail/mailboxes/{item['id']}"
    shown = client.get(box_url)
    saved = client.post(box_url, data={"forward": "copy@пример.рф", "csrf_token": csrf_from(shown.text)},
                        follow_redirects=True)
    assert "Mailbox info@пример.рф saved." in saved.text, saved.text
    assert "<dd>copy@пример.рф</dd>" in saved.text and 'value="copy@пример.рф"' in saved.text
    assert "xn--" not in re.sub(r'title="[^"]*"', "", saved.text), "A-labels only in the tooltips"
