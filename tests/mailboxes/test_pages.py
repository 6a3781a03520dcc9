"""Mail → Mailboxes (with the mail domain they need): the password never appears in an answer."""

from __future__ import annotations

from tests.conftest import csrf_from
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
