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
