"""Adding nodes through the API, the two-step form and the CLI: validation (hostile corpus), errors, nothing stored."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app.extensions import db
from app.models import Node, Operation
from app.services.setup import fingerprint_of
from tests.cluster.fakessh import FakeSSHServer
from tests.conftest import free_port

CORPUS = json.loads((Path(__file__).resolve().parents[2] / "agent/tests/hostile_corpus.json").read_text())["values"]
HOSTILE = [(v["why"], v["repeat"][0] * v["repeat"][1] if "repeat" in v else v["value"]) for v in CORPUS]
FIELDS = ["name", "address", "ssh_port", "roles", "weight", "password", "private_key", "host_key_fingerprint"]


def basic(name="admin"):
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:correct horse battery".encode()).decode()}


@pytest.fixture
def admin_api(app, client, users):
    """Headers of an admin's API calls (a Bearer token: Basic would hash the password on every call)."""
    from app.models import User
    from app.services import accounts

    user_id = users.make("admin", admin=True)
    with app.app_context():
        _, raw = accounts.create_token(db.session.get(User, user_id), "tests")
    return {"Authorization": f"Bearer {raw}"}


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return db.session.query(Node).count(), db.session.query(Operation).count()


@pytest.mark.parametrize("field", FIELDS)
def test_hostile_values_are_refused_naming_the_field(app, client, admin_api, field):
    """Every hostile value in every field: a 4xx naming the field (or the address SSH cannot reach); nothing stored."""
    closed = free_port()
    before = counts(app)
    for why, value in HOSTILE:
        body = {"name": "n1", "address": "127.0.0.1", "ssh_port": closed, "password": "secret pw", "roles": ["web"],
                "host_key_fingerprint": "SHA256:" + "A" * 43}
        if field == "private_key":
            body.pop("password")
        body[field] = value
        response = client.post("/api/v1/nodes", json=body, headers=admin_api)
        assert 400 <= response.status_code < 500, (why, response.status_code, response.text[:300])
        data = response.get_json()
        assert data["error"] and isinstance(data["fields"], dict), why
        named = set(data["fields"])
        # A value that is valid for its field reaches the SSH connection, which fails on the closed port.
        assert field in named or named == {"address"} or (field == "password" and named == {"password"}), \
            (why, field, data)
    assert counts(app) == before


def test_api_add_refuses_unknown_fields_and_both_credentials(client, admin_api):
    """Unknown fields and password + private key at once are named."""
    response = client.post("/api/v1/nodes", json={"name": "n1", "address": "127.0.0.1", "password": "x",
                                                  "private_key": "y", "colour": "red"}, headers=admin_api)
    assert response.status_code == 422 and response.get_json()["fields"] == {"colour": "unknown field"}
    response = client.post("/api/v1/nodes", json={"name": "n1", "address": "127.0.0.1", "password": "x",
                                                  "private_key": "y"}, headers=admin_api)
    assert "not both" in response.get_json()["fields"]["password"]
    response = client.post("/api/v1/nodes", data="[]", content_type="application/json", headers=admin_api)
    assert response.status_code == 422 and "body" in response.get_json()["fields"]


def test_api_add_is_admin_only(client, users):
    """A user gets 403, nobody 401."""
    users.make("bob")
    assert client.post("/api/v1/nodes", json={}, headers=basic("bob")).status_code == 403
    assert client.post("/api/v1/nodes", json={}).status_code == 401


def test_api_add_against_a_loopback_sshd_stores_the_node_and_starts_setup(app, client, admin_api):
    """Steps 1-3 at submission; 202 with the operation; the node is pinned and pending, the credential gone."""
    server = FakeSSHServer()
    try:
        response = client.post("/api/v1/nodes", headers=admin_api, json={
            "name": "n1", "address": "127.0.0.1", "ssh_port": server.port, "password": server.node.root_password,
            "roles": ["web", "dns"], "weight": 50, "host_key_fingerprint": fingerprint_of(server.host_key)})
    finally:
        server.close()
    assert response.status_code == 202, response.text
    body = response.get_json()
    assert body["operation"]["url"] == f"/api/v1/operations/{body['operation']['id']}"
    assert body["node"]["roles"] == ["web", "dns"] and body["node"]["state"] == "new"
    with app.app_context():
        node = db.session.get(Node, body["node"]["id"])
        assert node.setup_pending and node.host_key_fingerprint.startswith("SHA256:") and node.weight == 50
        operation = db.session.get(Operation, body["operation"]["id"])
        preface = "\n".join(operation.params["preface"])
        assert operation.kind == "node_setup" and "step 3/8" in preface
        assert server.node.root_password not in preface + json.dumps(operation.params)
        columns = [str(getattr(node, c.key)) for c in Node.__table__.columns]
        assert not any(server.node.root_password in value for value in columns)
    again = client.post("/api/v1/nodes", headers=admin_api, json={
        "name": "n2", "address": "127.0.0.1", "ssh_port": server.port, "password": "x",
        "host_key_fingerprint": fingerprint_of(server.host_key)})
    assert again.status_code == 422 and "node n1 is already this server" in again.get_json()["fields"]["address"]
    setup = client.get(f"/api/v1/nodes/{body['node']['id']}/setup", headers=admin_api).get_json()
    assert [s["status"] for s in setup["steps"]] == ["pending"] * 8 and setup["pending"] is True
    assert client.post(f"/api/v1/nodes/{body['node']['id']}/update-agent", json={},
                       headers=admin_api).status_code == 409


def test_api_patch_validates_and_records(app, client, admin_api, agent_nodes, local_node):
    """PATCH: bad values named; flags 200; roles 202 with an operation; the local node's roles refused."""
    node_id = agent_nodes.add("p1", roles=("web",))
    for why, value in HOSTILE:
        for field in ("roles", "maintenance", "users_locked", "weight"):
            if field in ("maintenance", "users_locked") and isinstance(value, bool):
                continue
            response = client.patch(f"/api/v1/nodes/{node_id}", json={field: value}, headers=admin_api)
            assert response.status_code == 422 and field in response.get_json()["fields"], (why, field)
    response = client.patch(f"/api/v1/nodes/{node_id}", json={"maintenance": True, "weight": 7}, headers=admin_api)
    assert response.status_code == 200 and response.get_json()["maintenance"] is True
    response = client.patch(f"/api/v1/nodes/{node_id}", json={"roles": ["web", "mail"]}, headers=admin_api)
    assert response.status_code == 202 and response.get_json()["operation"]["id"]
    response = client.patch(f"/api/v1/nodes/{local_node.node_id}", json={"roles": ["web"]}, headers=admin_api)
    assert response.status_code == 409 and "roles" in response.get_json()["fields"]
    assert client.delete(f"/api/v1/nodes/{local_node.node_id}", headers=admin_api).status_code == 409
    assert client.post(f"/api/v1/nodes/{node_id}/retry", json={}, headers=admin_api).status_code == 409
    removed = client.delete(f"/api/v1/nodes/{node_id}", headers=admin_api)
    assert removed.status_code == 200 and removed.get_json()["removed"]
    # Never reached over SSH: nothing to take off the server, and the answer says so.
    assert "never reached" in removed.get_json()["node"]
    assert client.delete(f"/api/v1/nodes/{node_id}", headers=admin_api).status_code == 404


def test_openapi_documents_the_routes(client, admin_api):
    """The OpenAPI document has the new routes and stays valid."""
    from openapi_spec_validator import validate

    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    assert {"post", "get"} <= set(spec["paths"]["/api/v1/nodes"])
    assert {"patch", "delete", "get"} <= set(spec["paths"]["/api/v1/nodes/{node_id}"])
    assert "/api/v1/nodes/{node_id}/update-agent" in spec["paths"]


def test_cli_nodes_add(app, runner):
    """`flask nodes add`: a clear error for bad input or an unreachable node; success against a loopback sshd."""
    result = runner.invoke(args=["nodes", "add", "Bad!", "127.0.0.1"], input="pw\n")
    assert result.exit_code != 0 and "name:" in result.output
    result = runner.invoke(args=["nodes", "add", "n1", "127.0.0.1", "--ssh-port", str(free_port())], input="pw\n")
    assert result.exit_code != 0 and "cannot reach" in result.output
    server = FakeSSHServer()
    try:
        result = runner.invoke(args=["nodes", "add", "n1", "127.0.0.1", "--ssh-port", str(server.port),
                                     "--roles", "web"], input=server.node.root_password + "\n")
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert "node n1 (id" in result.output and "SHA256:" in result.output
    assert server.node.root_password not in result.output.split("\n", 1)[1]
