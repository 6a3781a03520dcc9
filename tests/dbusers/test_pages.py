"""Databases → Database users: create with a password and a database, change the password, delete with the
in-page question; the password is never shown."""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.support.panel import logged_in


def test_a_customer_creates_changes_and_deletes_a_database_user(dbc, app):
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    client = logged_in(app, "alice")
    page = client.get("/databases/users/")
    assert page.status_code == 200 and "No database users yet." in page.text
    made = client.post("/databases/users/", data={"name": "app", "password": "first password", "databases": "shop",
                                                  "csrf_token": csrf_from(page.text)}, follow_redirects=True)
    assert made.status_code == 200 and "alice_app" in made.text and "first password" not in made.text
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "first password", "alice_shop") is None

    user_url = re.search(r'href="(/databases/users/\d+)"', made.text).group(1)
    shown = client.get(user_url)
    assert "alice_shop" in shown.text and "127.0.0.1" in shown.text
    saved = client.post(user_url, data={"password": "second password", "databases": "alice_shop",
                                        "csrf_token": csrf_from(shown.text)})
    assert saved.status_code == 302
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "second password", "alice_shop") is None

    listed = client.get("/databases/users/").text
    assert "Delete database user alice_app?" in listed
    delete_url = re.search(r'action="(/databases/users/\d+/delete)"', listed).group(1)
    assert client.post(delete_url, data={"csrf_token": csrf_from(listed)}).status_code == 302
    assert dbc.server.accounts() == set()
