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


def test_bulk_delete_asks_naming_the_rows_then_reports_each(client, cluster, alice):
    """Two mail domains ticked: the question names both; confirmed, the empty one is deleted and the one
    with a mailbox is kept with the node's reason, each through the single delete's service."""
    cluster.zones("alice", "example.net", "example.org")
    for name in ("example.net", "example.org"):
        page = client.get("/mail/domains")
        client.post("/mail/domains", data={"name": name, "csrf_token": csrf_from(page.text)})
    page = client.get("/mail/mailboxes")
    client.post("/mail/mailboxes", data={"address": "box@example.net", "password": "sekret password 1",
                                         "csrf_token": csrf_from(page.text)})
    listed = client.get("/mail/domains").text
    ids = dict((name, item_id) for item_id, name in re.findall(
        r'<input type="checkbox" name="ids" value="(\d+)" form="maildomains-table-bulk" aria-label="Select mail '
        r'domain ([^"]+)"', listed))
    assert set(ids) == {"example.net", "example.org"}
    action = re.search(r'<form id="maildomains-table-bulk" method="post" action="([^"]+)"', listed).group(1)
    token = csrf_from(listed)
    asked = client.post(action, data={"ids": list(ids.values()), "step": "ask", "csrf_token": token})
    assert asked.status_code == 200 and "Delete 2 mail domains?" in asked.text
    assert "example.net" in asked.text and "example.org" in asked.text
    assert 'name="step" value="delete"' in asked.text
    assert "example.org" in client.get("/mail/domains").text, "asking deletes nothing"
    done = client.post(action, data={"ids": list(ids.values()), "step": "delete", "csrf_token": csrf_from(asked.text)})
    assert done.status_code == 200 and "1 of 2 mail domains deleted" in done.text
    kept = re.search(rf'<tr id="outcome-{ids["example.net"]}" data-deleted="no">(.*?)</tr>', done.text, re.S)
    assert kept and "mailbox" in kept.group(1)
    assert f'<tr id="outcome-{ids["example.org"]}" data-deleted="yes">' in done.text
    after = client.get("/mail/domains").text
    assert "example.net" in after and "example.org" not in after.split("<tbody>", 1)[1]
    nothing = client.post(action, data={"step": "ask", "csrf_token": token})
    assert nothing.status_code == 302
