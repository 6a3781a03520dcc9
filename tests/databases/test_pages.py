"""Databases → Databases: create from the form (the prefix added and said), the connection details on the
database's page, a bad name shown on its field, delete with the in-page question."""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.support.panel import logged_in


def test_a_customer_creates_a_database_and_sees_how_to_connect(dbc, app):
    client = logged_in(app, "alice")
    page = client.get("/databases/")
    assert page.status_code == 200 and "No databases yet." in page.text
    made = client.post("/databases/", data={"name": "shop", "charset": "utf8mb4", "csrf_token": csrf_from(page.text)},
                       follow_redirects=True)
    assert made.status_code == 200, made.text
    assert "alice_shop" in made.text and "prefixed with alice_" in made.text
    connection = made.text.split('id="connection"', 1)[1].split("</dl>", 1)[0]
    assert "127.0.0.1" in connection and "3306" in connection and "alice_shop" in connection
    assert dbc.server.databases() == {"alice_shop"}

    listed = client.get("/databases/").text
    delete_url = re.search(r'action="(/databases/\d+/delete)"', listed).group(1)
    assert "Delete database alice_shop?" in listed  # the in-page question (macros/confirm.html)
    gone = client.post(delete_url, data={"csrf_token": csrf_from(listed)})
    assert gone.status_code == 302 and dbc.server.databases() == set()


def test_a_bad_name_is_shown_on_its_field_and_nothing_is_made(dbc, app):
    client = logged_in(app, "alice")
    page = client.get("/databases/")
    refused = client.post("/databases/", data={"name": "a'; DROP DATABASE mysql; --", "charset": "utf8mb4",
                                               "csrf_token": csrf_from(page.text)})
    assert refused.status_code == 400
    assert 'data-field="name"' in refused.text or "not allowed" in refused.text
    assert dbc.server.databases() == set() and dbc.index("DatabaseIndex") == []
