"""A delete asks first in the page, names its row, and says what goes with it: a zone names the web domains
and mail domains it serves (not those a deeper zone serves, nor another zone's)."""

from __future__ import annotations

import re

from tests.userdata.conftest import basic


def test_a_zones_question_names_what_it_serves(app, client, cluster, auth):
    cluster.node("n1")
    cluster.user("alice")
    alice = basic("alice")
    for path, name in (("/api/v1/domains", "shop.example"), ("/api/v1/domains", "eu.shop.example"),
                       ("/api/v1/domains", "other.example"), ("/api/v1/webdomains", "shop.example"),
                       ("/api/v1/webdomains", "www2.shop.example"), ("/api/v1/maildomains", "shop.example"),
                       ("/api/v1/webdomains", "eu.shop.example"), ("/api/v1/maildomains", "other.example")):
        body = {"name": name, "ip": "192.0.2.1"} if path == "/api/v1/domains" else {"name": name}
        made = client.post(path, json=body, headers=alice)
        assert made.status_code == 201, (name, made.json)
    auth.login("alice", create=False)
    page = client.get("/domains/names").text
    questions = dict(re.findall(r'<summary[^>]*aria-label="([^"]+)"[^>]*>Delete</summary>\s*'
                                r'<div class="confirm-box">\s*<p>([^<]+)</p>', page))
    assert questions["Delete domain name shop.example"] == (
        "Delete domain name shop.example? Its records go with it. It serves the mail domain shop.example and the "
        "web domains shop.example, www2.shop.example: they will no longer be found by name.")
    assert questions["Delete domain name eu.shop.example"] == (
        "Delete domain name eu.shop.example? Its records go with it. It serves the web domain eu.shop.example: "
        "they will no longer be found by name.")
    assert questions["Delete domain name other.example"].endswith("It serves the mail domain other.example: they "
                                                                 "will no longer be found by name.")
    # The question's own button posts the delete; the row's only opens it.
    assert page.count('<button type="submit" class="danger">Delete domain name ') == 3
