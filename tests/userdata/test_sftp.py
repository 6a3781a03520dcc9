"""SFTP access of hosting accounts, from the master: the password's crypt hash made on the master and set on
every node holding the user, SSH keys through the API and the Account page, suspension locking the login."""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from app.services.os_passwords import sha512_crypt
from tests.conftest import Users, csrf_from
from tests.userdata.conftest import basic

NEW = "a brand new passphrase"


def public_key(comment: str = "") -> str:
    """A fresh ed25519 public key line."""
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".strip()


def shadow(cluster, node_id: int, name: str) -> list[str]:
    """The user's row of the node's /etc/shadow."""
    text = (cluster.root(node_id) / "etc/shadow").read_text()
    return next(line.split(":") for line in text.splitlines() if line.startswith(name + ":"))


def opens(field: str, password: str) -> bool:
    """Whether a `$6$rounds=N$salt$hash` shadow field matches password (as PAM would check it)."""
    _, _, rounds, salt, _ = field.split("$")
    return sha512_crypt(password, salt, int(rounds.removeprefix("rounds="))) == field


def user_id(app, name: str) -> int:
    from sqlalchemy import select

    from app.extensions import db
    from app.models import User

    with app.app_context():
        return db.session.scalar(select(User.id).where(User.name == name))


@pytest.mark.parametrize("password, salt, rounds", [
    ("correct horse battery", "saltsalt", 5000), ("pässwörd " * 9, "0123456789abcdef", 5000), ("x", "s", 5000)])
def test_sha512_crypt_is_what_openssl_makes(password, salt, rounds):
    """The master's sha512-crypt equals `openssl passwd -6` (glibc's own algorithm) for the same salt."""
    made = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password,
                          capture_output=True, text=True, check=True).stdout.strip()
    assert sha512_crypt(password, salt, rounds) == made


def test_a_new_user_gets_the_sftp_group_and_a_hash_of_the_panel_password(app, cluster):
    """Made through the master: the node's shadow holds a sha512-crypt hash that opens with the panel password
    (never the password itself), the account is in the SFTP group."""
    node = cluster.node("n1")
    cluster.user("alice")
    field = shadow(cluster, node, "alice")[1]
    assert field.startswith("$6$rounds=") and opens(field, Users.PASSWORD)
    group = (cluster.root(node) / "etc/group").read_text()
    assert "hostfleet-sftp:" in group and "alice" in group.split("hostfleet-sftp:")[1].splitlines()[0]
    for path in cluster.root(node).rglob("*"):
        if path.is_file():
            assert Users.PASSWORD.encode() not in path.read_bytes(), path


def test_password_changes_reach_the_nodes_old_one_no_longer_opens(app, client, cluster, users):
    """An administrator's change (API) and the user's own (Account page) both replace the node's hash."""
    node = cluster.node("n1")
    cluster.user("alice")
    users.make("root", admin=True)
    alice = user_id(app, "alice")
    changed = client.put(f"/api/v1/users/{alice}", json={"password": NEW}, headers=basic("root"))
    assert changed.status_code == 200, changed.json
    field = shadow(cluster, node, "alice")[1]
    assert opens(field, NEW) and not opens(field, Users.PASSWORD)
    browser = app.test_client()
    page = browser.get("/login")
    browser.post("/login", data={"username": "alice", "password": NEW, "csrf_token": csrf_from(page.text)})
    token = csrf_from(browser.get("/account").text)
    third = "a third passphrase"
    posted = browser.post("/account/password", data={"current_password": NEW, "new_password": third,
                                                      "confirm_password": third, "csrf_token": token})
    assert posted.status_code == 302
    field = shadow(cluster, node, "alice")[1]
    assert opens(field, third) and not opens(field, NEW)


def test_keys_api_add_list_delete_reach_the_node(app, client, cluster):
    """alice adds a key: listed with its fingerprint, in the node's key file; deleted: gone from both."""
    node = cluster.node("n1")
    cluster.user("alice")
    alice = user_id(app, "alice")
    key = public_key("alice@laptop")
    added = client.post(f"/api/v1/users/{alice}/sshkeys", json={"key": key}, headers=basic("alice"))
    assert added.status_code == 201, added.json
    assert added.json["fingerprint"].startswith("SHA256:") and added.json["comment"] == "alice@laptop"
    assert [n["outcome"] for n in added.json["nodes"]] == ["applied"]
    listed = client.get(f"/api/v1/users/{alice}/sshkeys", headers=basic("alice")).json["items"]
    assert [k["key"] for k in listed] == [key]
    keys_file = cluster.root(node) / "etc/ssh/hostfleet-keys/alice"
    assert keys_file.read_text() == key + "\n"
    deleted = client.delete(f"/api/v1/users/{alice}/sshkeys/{listed[0]['id']}", headers=basic("alice"))
    assert deleted.status_code == 200
    assert client.get(f"/api/v1/users/{alice}/sshkeys", headers=basic("alice")).json["items"] == []
    assert not keys_file.exists()
    assert client.delete(f"/api/v1/users/{alice}/sshkeys/{listed[0]['id']}", headers=basic("alice")).status_code == 404


SHORT_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.mark.parametrize("body, status", [
    ({"key": "ssh-ed25519 not-base64!"}, 400), ({"key": SHORT_RSA}, 400), ({"key": ""}, 400),
    ({"key": 'command="id" ' + public_key()}, 400), ({"key": public_key() + "\nssh-ed25519 AAAA"}, 400),
    ({"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA=="}, 400), ({"key": 5}, 422), ({}, 422),
])
def test_bad_keys_refused_naming_the_field_nothing_stored(app, client, cluster, body, status):
    """A bad key is a 4xx naming `key`; nothing is stored on the master or written on the node."""
    node = cluster.node("n1")
    cluster.user("alice")
    alice = user_id(app, "alice")
    before = cluster.tree(node)
    refused = client.post(f"/api/v1/users/{alice}/sshkeys", json=body, headers=basic("alice"))
    assert refused.status_code == status, refused.json
    assert "key" in refused.json["fields"]
    assert client.get(f"/api/v1/users/{alice}/sshkeys", headers=basic("alice")).json["items"] == []
    assert cluster.tree(node) == before


def test_a_key_twice_or_another_users_keys_refused(app, client, cluster, users):
    """The same key twice is 409; bob neither lists nor adds nor deletes alice's keys; an admin may."""
    cluster.node("n1")
    cluster.user("alice")
    cluster.user("bob")
    users.make("root", admin=True)
    alice = user_id(app, "alice")
    key = public_key()
    assert client.post(f"/api/v1/users/{alice}/sshkeys", json={"key": key}, headers=basic("alice")).status_code == 201
    again = client.post(f"/api/v1/users/{alice}/sshkeys", json={"key": key + " renamed"}, headers=basic("alice"))
    assert again.status_code == 409 and "key" in again.json["fields"]
    assert client.get(f"/api/v1/users/{alice}/sshkeys", headers=basic("bob")).status_code == 404
    assert client.post(f"/api/v1/users/{alice}/sshkeys", json={"key": public_key()},
                       headers=basic("bob")).status_code == 404
    assert client.get(f"/api/v1/users/{alice}/sshkeys").status_code == 401
    by_admin = client.post(f"/api/v1/users/{alice}/sshkeys", json={"key": public_key()}, headers=basic("root"))
    assert by_admin.status_code == 201
    key_id = by_admin.json["id"]
    assert client.delete(f"/api/v1/users/{alice}/sshkeys/{key_id}", headers=basic("bob")).status_code == 404
    assert len(client.get(f"/api/v1/users/{alice}/sshkeys", headers=basic("alice")).json["items"]) == 2


def test_suspension_locks_the_login_on_the_node_resume_unlocks(app, client, cluster, users):
    """Suspended: the node's hash is locked and the account expired (key logins refused too); resumed: open."""
    node = cluster.node("n1")
    cluster.user("alice")
    users.make("root", admin=True)
    alice = user_id(app, "alice")
    hashed = shadow(cluster, node, "alice")[1]
    assert client.put(f"/api/v1/users/{alice}", json={"active": False}, headers=basic("root")).status_code == 200
    row = shadow(cluster, node, "alice")
    assert row[1] == "!" + hashed and row[7] == "1"
    assert client.put(f"/api/v1/users/{alice}", json={"active": True}, headers=basic("root")).status_code == 200
    row = shadow(cluster, node, "alice")
    assert row[1] == hashed and row[7] == ""


def test_sftp_page_adds_and_deletes_keys(app, client, cluster, auth):
    """The Account > SFTP page names the node and login, adds a key (a bad one is refused under its field)
    and deletes it after asking."""
    node = cluster.node("n1")
    cluster.user("alice")
    auth.login("alice", create=False)
    page = client.get("/account/sftp")
    assert page.status_code == 200 and "n1" in page.text and "<code>alice</code>" in page.text
    token = csrf_from(page.text)
    bad = client.post("/account/sftp", data={"key": "ssh-ed25519 !!", "csrf_token": token})
    assert bad.status_code == 400 and "base64" in bad.text
    key = public_key("from-the-page")
    added = client.post("/account/sftp", data={"key": key, "csrf_token": token})
    assert added.status_code == 302
    listed = client.get("/account/sftp").text
    assert "from-the-page" in listed and "SHA256:" in listed
    assert (cluster.root(node) / "etc/ssh/hostfleet-keys/alice").read_text() == key + "\n"
    alice = user_id(app, "alice")
    key_id = client.get(f"/api/v1/users/{alice}/sshkeys", headers=basic("alice")).json["items"][0]["id"]
    deleted = client.post(f"/account/sftp/keys/{key_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302
    assert "from-the-page" not in client.get("/account/sftp").text
    assert client.post("/account/sftp/keys/nope/delete", data={"csrf_token": token}).status_code == 404
