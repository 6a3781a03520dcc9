"""Another site's page cannot make a browser change anything through the API.

A browser that remembered HTTP Basic credentials for the panel would add them to a form another site
posts to the API; the API answers such posts 403 (foreign Origin) or 415 (not JSON) before it looks at
any credential, and never asks a browser for Basic credentials in the first place.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.userdata.conftest import basic

EVIL = "https://evil.example"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def node_id(app, users):
    """A node row (no agent needed: the calls are refused before anything reaches it) and the admin `root`."""
    from app.extensions import db
    from app.services.nodes import create_node

    users.make("root", admin=True)
    with app.app_context():
        node = create_node("n1", "192.0.2.10", roles=["web"], is_local=False, reason="test")
        db.session.commit()
        return node.id


def queued(app) -> tuple[int, int]:
    """Operations recorded and jobs waiting in every queue."""
    from app.extensions import db
    from app.models import Operation
    from app.queues import redis_connection

    with app.app_context():
        operations = db.session.scalar(select(func.count()).select_from(Operation))
        jobs = sum(redis_connection().llen(key) for key in redis_connection().keys("rq:queue:*")
                   if redis_connection().type(key) == b"list")
    return operations, jobs


@pytest.mark.parametrize("action", ["sync", "update-agent", "retry"])
def test_a_cross_site_form_post_is_refused_and_queues_nothing(app, client, node_id, action):
    """A form post from another site's page, with the admin's remembered Basic credentials: 403 naming
    the Origin, nothing recorded or queued."""
    before = queued(app)
    response = client.post(f"/api/v1/nodes/{node_id}/{action}", data="", content_type=FORM,
                           headers={**basic("root"), "Origin": EVIL})
    assert response.status_code == 403, response.text
    assert EVIL in response.json["error"] and "Origin" in response.json["fields"]
    assert queued(app) == before


def test_a_form_post_without_origin_is_refused_naming_the_content_type(app, client, node_id):
    """An old browser may send no Origin: a POST that is not JSON is still refused (415), nothing queued."""
    before = queued(app)
    for content_type in (FORM, "text/plain", "multipart/form-data; boundary=x"):
        response = client.post(f"/api/v1/nodes/{node_id}/sync", data="", content_type=content_type,
                               headers=basic("root"))
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json["error"] and "Content-Type" in response.json["fields"]
    assert queued(app) == before


def test_a_cross_site_delete_is_refused(app, client, node_id):
    """PUT, PATCH and DELETE need a preflight anyway; from a foreign Origin they are refused too."""
    response = client.delete(f"/api/v1/nodes/{node_id}", headers={**basic("root"), "Origin": EVIL})
    assert response.status_code == 403
    assert client.get(f"/api/v1/nodes/{node_id}", headers=basic("root")).status_code == 200


def test_api_clients_still_work(app, client, node_id):
    """JSON (an empty object for a call without a body), or X-Requested-With, from no Origin or the panel's own."""
    response = client.post(f"/api/v1/nodes/{node_id}/sync", json={}, headers=basic("root"))
    assert response.status_code == 202, response.text
    response = client.post(f"/api/v1/nodes/{node_id}/sync", headers={**basic("root"), "X-Requested-With": "cli"})
    assert response.status_code == 202, response.text
    response = client.post(f"/api/v1/nodes/{node_id}/sync", json={"lists": ["firewall"]},
                           headers={**basic("root"), "Origin": "http://localhost"})
    assert response.status_code == 202, response.text


def test_no_basic_challenge_on_any_refusal(client, node_id):
    """No WWW-Authenticate: a browser is never asked for (and so never remembers) Basic credentials;
    the 401's JSON says how to authenticate."""
    for method, path in (("GET", "/api/v1/nodes"), ("POST", f"/api/v1/nodes/{node_id}/sync")):
        response = client.open(path, method=method, json={} if method == "POST" else None)
        assert response.status_code == 401 and "WWW-Authenticate" not in response.headers
        assert "Authorization header" in response.json["error"] and "Bearer" in response.json["error"]


def test_the_openapi_document_names_the_guard(client):
    """Every state-changing operation documents the 403; every POST the 415."""
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in ("post", "put", "patch", "delete"):
                assert "403" in operation["responses"], (method, path)
            if method == "post":
                assert "415" in operation["responses"], (method, path)
