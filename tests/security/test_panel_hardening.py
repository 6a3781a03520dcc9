"""Panel hardening: framing and scripts, the node's host key, the database file,
secrets echoed into forms, and panel users named like a node's own accounts."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from app.services.setup import fingerprint_of
from tests.cluster.fakessh import FakeSSHServer, _new_ed25519_pem
from tests.conftest import csrf_from, free_port
from tests.userdata.conftest import basic

TEMPLATES = Path(__file__).resolve().parents[2] / "app/templates"


@pytest.mark.parametrize("path", ["/login", "/cluster/nodes", "/api/v1/nodes"])
def test_pages_cannot_be_framed_and_run_only_the_panels_scripts(auth, client, path):
    """X-Frame-Options DENY and a CSP that allows scripts and styles from the panel only, no inline code."""
    auth.login("root", admin=True)
    response = (client.application.test_client() if path == "/login" else client).get(
        path, headers=basic("root") if path.startswith("/api/") else {})
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]


def test_no_template_holds_code_the_policy_would_block():
    """No inline <script> or <style>, no on…= handler, no style= attribute: the CSP would block them
    (a confirmation is a data-confirm attribute that app/static/hostfleet.js reads)."""
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"<style\b", r"\son[a-z]+\s*=", r"\sstyle\s*=",
                        r"javascript:", r"hx-on"):
            found += [f"{template.relative_to(TEMPLATES)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert found == []


def test_adding_a_node_through_the_api_needs_its_host_key_fingerprint(app, client, users):
    """Without host_key_fingerprint: 422 naming it, and no SSH login is tried (root's password goes nowhere)."""
    from app.extensions import db
    from app.models import Node

    users.make("root", admin=True)
    server = FakeSSHServer()
    try:
        body = {"name": "n1", "address": "127.0.0.1", "ssh_port": server.port,
                "password": server.node.root_password, "roles": ["web"]}
        response = client.post("/api/v1/nodes", json=body, headers=basic("root"))
        assert response.status_code == 422, response.text
        assert "host_key_fingerprint" in response.json["fields"]
        assert "ssh-keygen" in response.json["fields"]["host_key_fingerprint"]
        with app.app_context():
            assert db.session.query(Node).count() == 0
        body["host_key_fingerprint"] = fingerprint_of(server.host_key)
        assert client.post("/api/v1/nodes", json=body, headers=basic("root")).status_code == 202
    finally:
        server.close()


def test_the_database_file_is_private(app, client, users):
    """The SQLite file (every node's signing secret) and its WAL are 0600; its folder is no one else's to write."""
    users.make("root", admin=True)
    database = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the database is not SQLite")
    files = [database] + [database.with_name(database.name + s) for s in ("-wal", "-shm")]
    for file in files:
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert not stat.S_IMODE(database.parent.stat().st_mode) & 0o022


def test_the_private_key_is_not_echoed_when_the_setup_form_comes_back(auth, client):
    """Step 2 shown again after an error keeps the address and roles but not root's password or private key."""
    auth.login("root", admin=True)
    key = _new_ed25519_pem().getvalue()
    key_body = key.splitlines()[1]
    token = csrf_from(client.get("/cluster/nodes/add").text)
    fields = {"csrf_token": token, "name": "n1", "address": "127.0.0.1", "ssh_port": str(free_port()),
              "roles": ["web"], "weight": "100", "host_key_fingerprint": "SHA256:" + "A" * 43}
    with_key = client.post("/cluster/nodes/add/confirm", data={**fields, "private_key": key})
    assert with_key.status_code >= 400 and "cannot reach" in with_key.text
    assert key_body not in with_key.text and "PRIVATE KEY" not in with_key.text
    with_password = client.post("/cluster/nodes/add/confirm", data={**fields, "password": "root-secret-pw"})
    assert with_password.status_code >= 400 and "root-secret-pw" not in with_password.text


@pytest.mark.parametrize("name", ["ispmaster", "systemd-timesync", "opendkim", "polkitd", "bind", "daemon"])
def test_a_panel_user_cannot_take_a_nodes_own_account_name(client, users, name):
    """`ispmaster` (the UID 0 account setup makes on every node) and Debian's system accounts: 400 naming `name`."""
    users.make("root", admin=True)
    response = client.post("/api/v1/users", json={"name": name, "password": "a long password", "roles": []},
                           headers=basic("root"))
    assert response.status_code == 400, response.text
    assert "name" in response.json["fields"] and "system account" in response.json["fields"]["name"]


@pytest.mark.parametrize("line, message", [
    ("gitlab-runner:x:999:999::/home/gitlab-runner:/bin/sh", "is a system account on this node"),
    ("debian:x:1000:1000:Debian:/home/debian:/bin/bash", "exists with UID 1000"),
])
def test_a_panel_user_cannot_take_an_account_a_node_already_has(app, client, cluster, users, line, message):
    """A name in a node's /etc/passwd that is no panel user's (a package's system account, the image's first
    user): the node refuses to make it, the answer names `name` or `uid` and the node, and no panel user is left."""
    from app.extensions import db
    from app.models import User

    users.make("root", admin=True)
    node_id = cluster.node("n1")
    passwd = cluster.root(node_id) / "etc/passwd"
    passwd.write_text(passwd.read_text() + line + "\n")
    name = line.split(":", 1)[0]
    response = client.post("/api/v1/users", json={"name": name, "password": "a long password", "roles": ["web"]},
                           headers=basic("root"))
    assert response.status_code == 409, response.text
    assert message in response.json["error"] and set(response.json["fields"]) & {"name", "uid"}
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.name == name)) is None
    assert passwd.read_text().splitlines() == ["root:x:0:0:root:/root:/bin/bash", line], "the account is unchanged"
