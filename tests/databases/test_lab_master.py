"""Databases through the master on real Debian nodes: a web node and a db node added through the API (the
`dbserver` synchronizer sets MariaDB up on the db node), a customer's database and user made through the
master's API, used from the web node with the `mariadb` client; another customer's user cannot reach it,
the host (no cluster node) cannot connect, and deleting the customer drops both."""

from __future__ import annotations

import re

import pytest
import requests

from tests.cluster.labpanel import LabPanel, reset

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(1800)]

PASSWORD = "a long lab password"
ALICE_DB_PW = "alice's db password 1"
BOB_DB_PW = "bob's db password 22"


class Env:
    def __init__(self, panel: LabPanel, web, dbn):
        self.panel, self.web, self.db = panel, web, dbn

    def as_user(self, user: str, method: str, path: str, json=None) -> requests.Response:
        return requests.request(method, self.panel.url + path, json=json, auth=(user, PASSWORD), timeout=120)

    def connect(self, node, user: str, password: str, database: str, sql: str):
        """`mariadb -h <db node> -u <user> <database> -e <sql>` on a lab node (the password in MYSQL_PWD)."""
        return node.exec(["env", f"MYSQL_PWD={password}", "mariadb", "-h", self.db.address, "-u", user, "--batch",
                          "--skip-column-names", "--connect-timeout=10", database, "-e", sql],
                         check=False, timeout=60)

    def root_sql(self, sql: str) -> str:
        return self.db.exec(["mariadb", "--batch", "--raw", "--skip-column-names", "-e", sql]).stdout


@pytest.fixture(scope="module")
def env(lab_nodes, tmp_path_factory):
    from tests.lab.lab import Lab

    web, dbn = lab_nodes(2)[:2]
    for node in (web, dbn):
        reset(node)
    panel = LabPanel(tmp_path_factory.mktemp("labdatabases"), Lab().repo_line).start()
    try:
        ids = {}
        for node, name, roles in ((web, "dbweb1", ["web"]), (dbn, "dbdb1", ["db"])):
            added = panel.add(node, name, roles=roles)
            assert added.status_code == 202, added.text
            ids[name] = added.json()["node"]["id"]
        for node_id in ids.values():
            panel.wait_state(node_id, "ready", timeout=900)
        web.exec("DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-client", timeout=600)
        for user in ("alice", "bob"):
            made = panel.request("POST", "/api/v1/users", {"name": user, "password": PASSWORD, "roles": ["web", "db"],
                                                           "nodes": {"web": "dbweb1", "db": "dbdb1"}})
            assert made.status_code == 201, made.text
        yield Env(panel, web, dbn)
    finally:
        panel.stop()
        for node in (web, dbn):
            reset(node)


def test_a_customers_database_made_through_the_master_is_used_from_the_web_node(env):
    # The dbserver synchronizer: MariaDB listens on the db node's cluster address.
    assert re.search(rf"{re.escape(env.db.address)}:3306\b", env.db.exec("ss -ltnH").stdout)
    made = env.as_user("alice", "POST", "/api/v1/databases", {"name": "shop"})
    assert made.status_code == 201, made.text
    assert made.json()["connection"] == {"host": env.db.address, "port": 3306, "database": "alice_shop"}
    user = env.as_user("alice", "POST", "/api/v1/dbusers", {"name": "app", "password": ALICE_DB_PW,
                                                           "databases": ["alice_shop"]})
    assert user.status_code == 201, user.text
    assert env.web.address in user.json()["hosts"]

    used = env.connect(env.web, "alice_app", ALICE_DB_PW, "alice_shop",
                       "CREATE TABLE t (id INT); INSERT INTO t VALUES (42); SELECT id FROM t;")
    assert used.returncode == 0 and used.stdout.strip() == "42", used.stderr

    env.as_user("bob", "POST", "/api/v1/databases", {"name": "blog"})
    bob = env.as_user("bob", "POST", "/api/v1/dbusers", {"name": "app", "password": BOB_DB_PW,
                                                        "databases": ["blog"]})
    assert bob.status_code == 201, bob.text
    denied = env.connect(env.web, "bob_app", BOB_DB_PW, "alice_shop", "SELECT id FROM t;")
    assert denied.returncode != 0 and "1044" in denied.stderr, denied.stderr
    assert env.connect(env.web, "bob_app", BOB_DB_PW, "bob_blog", "SELECT 1;").returncode == 0


def test_the_host_outside_the_cluster_cannot_connect(env):
    import subprocess

    proc = subprocess.run(["mariadb", "-h", env.db.address, "-u", "alice_app", "--connect-timeout=5",
                           "alice_shop", "-e", "SELECT 1;"], capture_output=True, text=True, timeout=60,
                          env={"MYSQL_PWD": ALICE_DB_PW, "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0, proc.stdout


def test_deleting_the_customer_drops_their_databases_and_users(env):
    users = env.panel.request("GET", "/api/v1/users").json()["items"]
    alice = next(u for u in users if u["name"] == "alice")
    deleted = env.panel.request("DELETE", f"/api/v1/users/{alice['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True, deleted.text
    databases = env.root_sql("SHOW DATABASES").split()
    assert "alice_shop" not in databases and "bob_blog" in databases
    accounts = env.root_sql("SELECT User FROM mysql.user").split()
    assert "alice_app" not in accounts and "bob_app" in accounts
    assert env.connect(env.web, "alice_app", ALICE_DB_PW, "alice_shop", "SELECT 1;").returncode != 0
