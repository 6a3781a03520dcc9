"""A hostile customer against databases and database users: each attack that once worked, shown refused
with nothing changed on the master, the db node or MariaDB."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import wait_until
from tests.databases.test_hostile import snapshot

MIB = 2**20


@pytest.fixture
def fast_usage(monkeypatch):
    """The agents this test starts measure disk use every 0.5 s (set before the nodes start)."""
    monkeypatch.setenv("HOSTFLEET_AGENT_USAGE_REFRESH_S", "0.5")


def user_id(dbc, name: str) -> int:
    return next(u["id"] for u in dbc.api("GET", "/users", "root", status=200).get_json()["items"] if u["name"] == name)


def disk_used_mb(dbc, uid: int) -> float:
    dbc.cluster.poll()
    return dbc.api("GET", f"/users/{uid}", "root", status=200).get_json()["disk_used_mb"] or 0


def test_a_databases_bytes_count_against_the_disk_quota(fast_usage, dbc):
    """A customer whose database fills their disk quota gets no further database (nor site)."""
    alice = user_id(dbc, "alice")
    dbc.api("PUT", f"/users/{alice}", "root", body={"limits": {"disk_mb": 1}}, status=200)
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    # What the customer's application writes into it, from their own web node.
    dbc.server.sql("CREATE TABLE alice_shop.t (b LONGBLOB) ENGINE=InnoDB;\n"
                   "INSERT INTO alice_shop.t VALUES (REPEAT('x', 3 * 1024 * 1024));\n"
                   "ANALYZE TABLE alice_shop.t;\n")
    wait_until(lambda: disk_used_mb(dbc, alice) >= 3, 30, interval=0.2, what="the database's bytes to be measured")

    before = snapshot(dbc)
    refused = dbc.api("POST", "/databases", body={"name": "more"}, status=409).get_json()
    assert refused["fields"] == {"name": "disk quota of 1 MB used up"}, refused
    assert snapshot(dbc) == before
    bob = dbc.api("GET", f"/users/{user_id(dbc, 'bob')}", "root", status=200).get_json()
    assert not bob["disk_used_mb"], "another owner's figure is not charged with alice's database"


class Session:
    """A connection the database user holds open (as a site's persistent connection does), one statement at
    a time."""

    def __init__(self, dbc, user: str, password: str, database: str):
        self.proc = subprocess.Popen(["mariadb", "--unbuffered", "--batch", "--skip-column-names", "--skip-reconnect",
                                      "-u", user, database], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=dbc.server.env(password))

    def row(self, statement: str) -> str:
        """The statement's one-line answer ("" when the connection was refused)."""
        try:
            self.proc.stdin.write(statement + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return ""
        return self.proc.stdout.readline().strip()

    def close(self, statement: str) -> tuple[int, str]:
        """The last statement; the client's exit status and errors."""
        try:
            _out, err = self.proc.communicate(statement + "\n", timeout=30)
        except BrokenPipeError:  # the connection was refused: the client has exited
            self.proc.wait(30)
            err = self.proc.stderr.read()
        return self.proc.returncode, err


def rows(dbc) -> int:
    return int(dbc.server.sql("SELECT COUNT(*) FROM alice_shop.t;")[0][0])


@pytest.mark.parametrize("change", ["password", "revoke", "delete"])
def test_a_session_opened_with_the_old_rights_ends_with_them(dbc, change):
    """A connection opened before the password changed, the grant was taken back or the user was deleted
    (MariaDB keeps it, with the rights it had) is ended: whoever held the leaked password loses the data."""
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    user = dbc.api("POST", "/dbusers", body={"name": "app", "password": "a long password", "databases": ["shop"]},
                   status=201).get_json()
    dbc.server.sql("CREATE TABLE alice_shop.t (v INT); INSERT INTO alice_shop.t VALUES (1);")
    session = Session(dbc, "alice_app", "a long password", "alice_shop")
    try:
        assert session.row("SELECT COUNT(*) FROM t;") == "1"
        if change == "password":
            dbc.api("PUT", f"/dbusers/{user['id']}", body={"password": "a new long password"}, status=200)
        elif change == "revoke":
            dbc.api("DELETE", f"/dbusers/{user['id']}/grants/alice_shop", status=200)
        else:
            dbc.api("DELETE", f"/dbusers/{user['id']}", status=204)
        status, err = session.close("INSERT INTO t VALUES (2);")
    finally:
        if session.proc.poll() is None:
            session.proc.kill()
    assert status != 0 and "ERROR" in err, err
    assert rows(dbc) == 1


def test_one_customers_user_cannot_take_every_connection_of_the_server(dbc):
    """A database user holds at most MAX_USER_CONNECTIONS connections per host, so one customer's script
    cannot use up the server's max_connections and lock every other customer's site out."""
    from agent.ops.db import MAX_USER_CONNECTIONS

    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    dbc.api("POST", "/dbusers", body={"name": "app", "password": "a long password", "databases": ["shop"]},
            status=201)
    sessions = [Session(dbc, "alice_app", "a long password", "alice_shop") for _ in range(MAX_USER_CONNECTIONS + 1)]
    try:
        answers = [session.row("SELECT 1;") for session in sessions]
        refused = [session.close("SELECT 1;") for session in sessions]
    finally:
        for session in sessions:
            if session.proc.poll() is None:
                session.proc.kill()
    assert answers.count("1") == MAX_USER_CONNECTIONS, answers
    errors = [err for status, err in refused if status != 0]
    assert len(errors) == 1 and "max_user_connections" in errors[0], errors


def test_a_scoped_web_node_address_is_no_account_host(app):
    """`%` in an account's host is MariaDB's wildcard: a web node's scoped IPv6 address is not given."""
    from app.extensions import db
    from app.services.dbserver import web_node_addresses
    from app.services.nodes import create_node

    with app.app_context():
        create_node("w1", "fe80::1%eth0", roles=["web"], reason="test")
        create_node("w2", "198.18.0.5", roles=["web"], reason="test")
        db.session.commit()
        assert web_node_addresses() == ["198.18.0.5"]


def test_a_password_and_its_hash_are_nowhere_but_in_mariadb(dbc, caplog):
    """Neither a database user's password nor MariaDB's hash of it is in any answer, page, master row, log or
    file of any agent; MariaDB holds the hash of the latest one."""
    from sqlalchemy import select

    from agent.ops.db import native_hash
    from app.extensions import db

    first, second = "Leak-Me 'q\\\"`1", "Second-Leak %_2"
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    user = dbc.api("POST", "/dbusers", body={"name": "app", "password": first, "databases": ["shop"]}, status=201)
    answers = [user.get_data(as_text=True)]
    item = user.get_json()["id"]
    answers.append(dbc.api("PUT", f"/dbusers/{item}", body={"password": second}, status=200).get_data(as_text=True))
    answers.append(dbc.api("DELETE", f"/dbusers/{item}/grants/alice_shop", status=200).get_data(as_text=True))
    answers.append(dbc.api("POST", f"/dbusers/{item}/grants", body={"database": "shop"}, status=200)
                   .get_data(as_text=True))
    for path in ("/dbusers", f"/dbusers/{item}", "/databases"):
        answers.append(dbc.api("GET", path, status=200).get_data(as_text=True))
    secrets = [s for password in (first, second) for s in (password, native_hash(password),
                                                          native_hash(password)[1:].lower())]
    assert dbc.server.sql("SELECT authentication_string FROM mysql.user WHERE User = 'alice_app';") == [
        [native_hash(second)], [native_hash(second)]]

    with dbc.app.app_context():
        rows = [repr(row) for table in db.metadata.sorted_tables for row in db.session.execute(select(table))]
    files = [path.read_bytes().decode("utf-8", "replace") for agent in dbc.cluster.agent_nodes.agents.values()
             for path in agent.root.parent.rglob("*") if path.is_file()]
    assert any("alice_app" in text for text in files) and any("alice_app" in row for row in rows), "where it would be"
    places = {"answers": answers, "master rows": rows, "agent files": files, "logs": [caplog.text]}
    found = [(where, secret) for where, texts in places.items() for secret in secrets
             if any(secret in text for text in texts)]
    assert not found, found


@pytest.mark.parametrize("kind", ["databases", "dbusers"])
def test_bulk_delete_with_another_customers_ids_deletes_and_names_nothing_of_theirs(dbc, app, kind):
    """bob ticks alice's ids (and one of his own) and confirms: only his own goes, her names are not shown."""
    from tests.conftest import Users, csrf_from

    body = {"name": "shop"} if kind == "databases" else {"name": "shop", "password": "a long password"}
    hers = dbc.api("POST", f"/{kind}", body=body, status=201).get_json()["id"]
    his = dbc.api("POST", f"/{kind}", "bob", body=body, status=201).get_json()["id"]
    client = app.test_client()
    client.post("/login", data={"username": "bob", "password": Users.PASSWORD,
                                "csrf_token": csrf_from(client.get("/login").get_data(as_text=True))})
    token = csrf_from(client.get("/account/tokens").get_data(as_text=True))
    page = "/databases/delete-selected" if kind == "databases" else "/databases/users/delete-selected"
    answer = client.post(page, data={"csrf_token": token, "ids": [str(hers), str(his)], "step": "delete"})
    assert answer.status_code == 200 and "alice_" not in answer.get_data(as_text=True)
    model = "DatabaseIndex" if kind == "databases" else "DbUserIndex"
    assert dbc.index(model) == ["alice_shop"]
    held = dbc.server.databases() if kind == "databases" else {u for u, _ in dbc.server.accounts()}
    assert held == {"alice_shop"}


@pytest.mark.parametrize("hosts", [["%"], ["0.0.0.0"], ["198.51.100.7"], "%"])
def test_a_customer_cannot_choose_where_a_new_user_connects_from(dbc, hosts):
    """The hosts are the cluster's web nodes, set by the master: a create naming any is refused naming the
    field (the API's schema knows no such field: 422)."""
    before = snapshot(dbc)
    refused = dbc.api("POST", "/dbusers", body={"name": "app", "password": "a long password", "hosts": hosts})
    assert 400 <= refused.status_code < 500 and "hosts" in (refused.get_json()["fields"] or {}), refused.get_json()
    assert snapshot(dbc) == before


def test_a_session_in_a_dropped_database_has_no_rights_on_the_one_made_again_under_its_name(dbc):
    """MariaDB keeps a session's rights on its current database: after the database is deleted (its grants
    taken back) and made again, the old session of a user not granted the new one must not write to it."""
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    dbc.api("POST", "/dbusers", body={"name": "app", "password": "a long password", "databases": ["shop"]},
            status=201)
    session = Session(dbc, "alice_app", "a long password", "alice_shop")
    try:
        assert session.row("SELECT 1;") == "1"
        shop = next(d["id"] for d in dbc.api("GET", "/databases", status=200).get_json()["items"])
        dbc.api("DELETE", f"/databases/{shop}", status=204)
        dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
        status, err = session.close("CREATE TABLE planted (v INT);")
    finally:
        if session.proc.poll() is None:
            session.proc.kill()
    assert status != 0 and "ERROR" in err, err
    assert dbc.server.sql("SHOW TABLES FROM alice_shop;") == []
