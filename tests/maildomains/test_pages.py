"""Mail → Mail domains: the list from the index, a create marked until its node confirms it, a refused delete."""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.userdata_pages import check_marks_create_in_flight


def test_a_create_in_flight_is_marked(app, client, cluster, alice):
    check_marks_create_in_flight(app, client, alice,
                                 "/mail/domains", "MailDomainIndex", "name", "maildomain", None)


def test_a_refused_delete_is_flashed_on_the_list(client, cluster, alice):
    """The node refuses to delete a mail domain with mailboxes: the list page says why (HTMX is sent there
    with HX-Redirect), the domain stays; a mail domain that is not the caller's is a 404."""
    cluster.zones("alice", "example.net")
    page = client.get("/mail/domains")
    client.post("/mail/domains", data={"name": "example.net", "csrf_token": csrf_from(page.text)})
    page = client.get("/mail/mailboxes")
    client.post("/mail/mailboxes", data={"address": "box@example.net", "password": "sekret password 1",
                                         "csrf_token": csrf_from(page.text)})
    listed = client.get("/mail/domains").text
    delete_url = re.search(r'action="(/mail/domains/\d+/delete)"', listed).group(1)
    token = csrf_from(listed)
    refused = client.post(delete_url, data={"csrf_token": token})
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/mail/domains")
    shown = client.get("/mail/domains").text
    assert 'class="flash' in shown and "mailbox" in shown.split('class="flash', 1)[1].split("</", 1)[0]
    assert "example.net" in shown
    htmx = client.post(delete_url, data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].endswith("/mail/domains")
    assert client.post("/mail/domains/999999/delete", data={"csrf_token": token}).status_code == 404
