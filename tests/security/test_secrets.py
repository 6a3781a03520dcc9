"""No secret is written anywhere: after a run with every kind of secret, grep files, database rows and Redis.

The run: a node added over SSH with a root password (a wrong one first, then the right one) against a loopback
sshd and its setup job run by a worker; API tokens made in the UI and used; panel users and mailboxes made
and changed with passwords (API and pages); logins through the form and HTTP Basic, a wrong password among
them. Then every file under the data dir and the agents' folders (logs, database, state, the nodes' files),
every row of every table, and every Redis key (RQ job data, results, exc_info, decompressed and unpickled)
are searched for each secret, raw and URL-, JSON-, form- and Basic-escaped. A hash is fine; the value is not.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import re
import secrets
import zlib
from pathlib import Path
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from redis import Redis

from app.services.setup import fingerprint_of
from tests.cluster.fakessh import FakeNode, FakeSSHServer
from tests.conftest import Users, csrf_from, run_worker_burst
from tests.userdata.conftest import basic


def secret(label: str) -> str:
    """A unique secret with characters that every escaping changes."""
    return f"{label}-{secrets.token_hex(6)} ä/&+\"'%="


def forms(value: str) -> set[bytes]:
    """The ways a secret can be written: raw, URL/form-encoded, JSON-escaped, UTF-8 or not."""
    texts = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1]}
    found = {t.encode() for t in texts} | {t.encode("latin-1", "ignore") for t in texts}
    # A fragment without the special characters still gives a leak away (e.g. a truncated or re-escaped copy).
    found.add(value.split(" ")[0].encode())
    return found


def redis_dump(redis_url: str) -> list[tuple[str, bytes]]:
    """Every value under every key, with RQ's compressed pickles opened up."""
    redis = Redis.from_url(redis_url)
    out: list[tuple[str, bytes]] = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        values: list[bytes] = [key]
        if kind == "string":
            values.append(redis.get(key))
        elif kind == "hash":
            for field, value in redis.hgetall(key).items():
                values += [field, value]
        elif kind == "list":
            values += redis.lrange(key, 0, -1)
        elif kind == "set":
            values += list(redis.smembers(key))
        elif kind == "zset":
            values += redis.zrange(key, 0, -1)
        elif kind == "stream":
            values += [repr(entry).encode() for entry in redis.xrange(key)]
        for value in values:
            for opened in unpack(value or b""):
                out.append((key.decode(errors="replace"), opened))
    return out


def unpack(value: bytes) -> list[bytes]:
    """The bytes, their zlib inflation and the repr of what they unpickle to."""
    layers = [value]
    try:
        layers.append(zlib.decompress(value))
    except zlib.error:
        pass
    for layer in list(layers):
        try:
            layers.append(repr(pickle.loads(layer)).encode())  # noqa: S301 - our own Redis, test only
        except Exception:  # noqa: BLE001 - most values are not pickles
            pass
    return layers


def table_rows(app) -> list[tuple[str, bytes]]:
    """Every row of every table, as text."""
    from app.extensions import db

    out = []
    with app.app_context():
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        with db.engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(sa.select(table)).mappings():
                    out.append((table.name, json.dumps(dict(row), default=str, ensure_ascii=False).encode()))
    return out


def files_under(*folders: Path) -> list[tuple[str, bytes]]:
    """Every regular file's bytes under the folders."""
    return [(str(path), path.read_bytes()) for folder in folders for path in sorted(Path(folder).rglob("*"))
            if path.is_file()]


def test_no_secret_is_written_anywhere(app, client, actors, cluster, tmp_path, redis_url, monkeypatch):
    """Setup with a root password, tokens, passwords of users and mailboxes, logins: no secret anywhere."""
    from app.services.setup import steps

    data_dir = Path(app.config["DATA_DIR"])
    log_file = data_dir / "panel.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_logger = logging.getLogger()
    root_logger.addHandler(handler)
    previous_level = root_logger.level
    root_logger.setLevel(logging.DEBUG)
    # The setup job waits for the agent it installed; the fake node has none, so it should give up quickly.
    monkeypatch.setattr(steps, "AGENT_WAIT_S", 1)
    secrets_used = {name: secret(name) for name in (
        "root-password", "wrong-root-password", "user-password", "changed-user-password", "mailbox-password",
        "changed-mailbox-password", "page-mailbox-password", "wrong-login-password")}
    admin = actors.bearer("admin")
    try:
        sshd = FakeSSHServer(FakeNode(root_password=secrets_used["root-password"]))
        try:
            wrong = client.post("/api/v1/nodes", headers=admin, json={
                "name": "s1", "address": "127.0.0.1", "ssh_port": sshd.port,
                "password": secrets_used["wrong-root-password"], "roles": ["web"],
                "host_key_fingerprint": fingerprint_of(sshd.host_key)})
            assert wrong.status_code in (400, 401, 409, 422), wrong.text
            added = client.post("/api/v1/nodes", headers=admin, json={
                "name": "s1", "address": "127.0.0.1", "ssh_port": sshd.port,
                "password": secrets_used["root-password"], "roles": ["web"],
                "host_key_fingerprint": fingerprint_of(sshd.host_key)})
            assert added.status_code == 202, added.text
            run_worker_burst(app)
            setup_run = client.get(added.json["operation"]["url"], headers=admin).json
            assert setup_run["status"] not in ("queued", "running"), setup_run
        finally:
            sshd.close()

        made = client.post("/api/v1/users", headers=admin, json={
            "name": "carol", "password": secrets_used["user-password"], "roles": ["web", "mail"]})
        assert made.status_code == 201, made.text
        changed = client.put(f"/api/v1/users/{made.json['id']}", headers=admin,
                             json={"password": secrets_used["changed-user-password"]})
        assert changed.status_code == 200, changed.text
        carol = basic("carol", secrets_used["changed-user-password"])
        assert client.get("/api/v1/webdomains", headers=carol).status_code == 200

        alice = actors.bearer("owner")
        cluster.zones("alice", "secret-mail.example.com")
        assert client.post("/api/v1/maildomains", json={"name": "secret-mail.example.com"},
                           headers=alice).status_code == 201
        box = client.post("/api/v1/mailboxes", headers=alice, json={
            "address": "box@secret-mail.example.com", "password": secrets_used["mailbox-password"]})
        assert box.status_code == 201, box.text
        assert client.put(f"/api/v1/mailboxes/{box.json['id']}", headers=alice, json={
            "password": secrets_used["changed-mailbox-password"]}).status_code == 200

        browser = app.test_client()
        page = browser.get("/login")
        refused = browser.post("/login", data={"username": "alice", "password": secrets_used["wrong-login-password"],
                                               "csrf_token": csrf_from(page.text)})
        assert refused.status_code == 400
        logged_in = browser.post("/login", data={"username": "alice", "password": Users.PASSWORD,
                                                 "csrf_token": csrf_from(page.text)})
        assert logged_in.status_code == 302
        token_page = browser.get("/account/tokens")
        made_token = browser.post("/account/tokens", data={"name": "secret test",
                                                           "csrf_token": csrf_from(token_page.text)})
        ui_token = re.search(r'<code id="new-token">([^<]+)</code>', made_token.text).group(1)
        assert client.get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {ui_token}"}).status_code == 200
        mailbox_page = browser.post("/mail/mailboxes", data={
            "address": "page@secret-mail.example.com", "password": secrets_used["page-mailbox-password"],
            "csrf_token": csrf_from(browser.get("/mail/mailboxes").text)})
        assert mailbox_page.status_code in (200, 302), mailbox_page.text[:300]
        run_worker_burst(app)
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(previous_level)
        handler.close()

    secrets_used.update({f"api-token-{who}": raw for who, raw in actors.tokens.items()})
    secrets_used["ui-api-token"] = ui_token
    secrets_used["login-password"] = Users.PASSWORD
    encoded = {name: forms(value) for name, value in secrets_used.items()}
    for name in ("login-password",):
        encoded[name].add(base64.b64encode(f"alice:{Users.PASSWORD}".encode()))
    encoded["changed-user-password"].add(
        base64.b64encode(f"carol:{secrets_used['changed-user-password']}".encode()))

    places = (files_under(data_dir, tmp_path / "agents") + table_rows(app) + redis_dump(redis_url))
    assert any(where.endswith("panel.log") for where, _ in places) and log_file.stat().st_size > 0
    assert any(where.startswith("rq:job:") for where, _ in places), "no RQ job record to search"
    # The search sees what was written: the mailbox's address is in the index and in the node's files.
    assert any(b"box@secret-mail.example.com" in content for where, content in places if "agents" in where)
    assert any(b"box@secret-mail.example.com" in content for where, content in places if where == "mailbox_index")
    leaks = sorted({f"{name} in {where}" for where, content in places for name, variants in encoded.items()
                    if any(v in content for v in variants)})
    print(f"\nsecrets: {len(secrets_used)} secrets × {len(places)} places (files, table rows, Redis values), "
          f"{len(leaks)} leaks")
    assert leaks == []
