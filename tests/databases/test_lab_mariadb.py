"""The db role's agent ops against a real MariaDB on a lab node (Debian's mariadb-server 10.11).

Three lab nodes: `db` runs MariaDB; `web` is the cluster's web node (database users may connect from it);
`other` is a cluster node that is not a web node (the firewall lets it reach 3306, MariaDB's grants do not).
The agent's routes run in this process (the real app, signed requests) with the root of the db node as
their root and the `mariadb` client entered into the db node, so every statement is the agent's own and
runs against the real server; every result is checked with the `mariadb` client from the nodes.
The three nodes are reinstalled from the lab's base at the end (the lab is shared).
"""

from __future__ import annotations

import os
import re
import socket
import time
from urllib.parse import quote

import pytest

from agent.config import AgentConfig
from agent.ops import db
from agent.server import create_app
from agent.tests.ops_helpers import SignedClient

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(1800)]

ALICE_PW = "alice's db pass 1"
BOB_PW = "bob's db pass 22"
MYSQL_DUMP = ("mariadb-dump --skip-dump-date --skip-comments --order-by-primary "
              "--ignore-table=mysql.innodb_index_stats --ignore-table=mysql.innodb_table_stats mysql")
HOSTILE = [
    "a'; DROP DATABASE mysql; --",
    "alice_x'; DROP DATABASE mysql; --",
    "alice_`x`", "alice_x`; DROP DATABASE mysql; -- ",
    "alice_%", "alice_a_%", "alice_\\", "alice_x\nDROP DATABASE mysql",
    "alice_shöp", "alice_" + "a" * 80, "mysql", "information_schema", "performance_schema", "sys", "bob_x",
]


class Env:
    def __init__(self, dbn, web, other, client: SignedClient):
        self.db, self.web, self.other, self.client = dbn, web, other, client

    def call(self, method: str, path: str, body=None, status: int | None = None):
        answer = self.client.request(method, path, body)
        if status is not None:
            assert answer.status_code == status, (method, path, body, answer.status_code, answer.get_json())
        return answer

    def connect(self, node, user: str, password: str, database: str, sql: str):
        """`mariadb -h <db node> -u <user> -p<password> <database> -e <sql>` run on node."""
        return node.exec(["mariadb", "-h", self.db.address, "-u", user, f"-p{password}", "--batch",
                          "--skip-column-names", "--connect-timeout=10", database, "-e", sql], check=False,
                         timeout=60)

    def root_sql(self, sql: str) -> str:
        return self.db.exec(["mariadb", "--batch", "--raw", "--skip-column-names", "-e", sql]).stdout


def refused_with(result, *codes: int) -> bool:
    """Whether a client run failed with one of MariaDB's error codes (`ERROR 1044 (42000): ...`, or before the
    TLS handshake completed `ERROR 2002 ...: 1130 - Host ... is not allowed`)."""
    return result.returncode != 0 and any(re.search(rf"\b{code}\b", result.stderr) for code in codes)


def install(node, packages: str, lab) -> None:
    node.exec(f"echo '{lab.repo_line}' > /etc/apt/sources.list.d/hostfleet-lab.list")
    node.exec("apt-get update -q", timeout=180)
    node.exec(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q {packages}", timeout=900)


@pytest.fixture(scope="module")
def env(lab, lab_nodes, tmp_path_factory):
    dbn, web, other = lab_nodes(3)[:3]
    install(dbn, "mariadb-server", lab)
    for node in (web, other):
        install(node, "mariadb-client", lab)
    dbn.exec("systemctl is-active mariadb || systemctl start mariadb")
    base = tmp_path_factory.mktemp("dbagent")
    enter = dbn.exec_argv([])
    config = AgentConfig(
        root=dbn.root, state_dir=base / "state", secret_file=base / "secret", cert_file=base / "cert.pem",
        key_file=base / "key.pem", roles=["db"],
        reload_commands={"mariadb": [*enter, "systemctl", "restart", "mariadb"],
                         "db_firewall": [*enter, "nft", "-f", f"/{db.SERVER_FIREWALL}"]})
    (base / "state").mkdir()
    secret = os.urandom(32)
    config.secret_file.write_text(secret.hex())
    config.secret_file.chmod(0o600)
    old_client = db.CLIENT
    db.CLIENT = [*enter, "mariadb"]
    try:
        yield Env(dbn, web, other, SignedClient(create_app(config), secret))
    finally:
        db.CLIENT = old_client
        if os.environ.get("HOSTFLEET_LAB_KEEP", "") in ("", "0"):
            for node in (dbn, web, other):
                lab.recreate(node.name)


@pytest.fixture(scope="module")
def configured(env):
    """A db node as the role leaves it: secured, listening on its cluster address, 3306 open to the cluster."""
    env.root_sql("CREATE USER IF NOT EXISTS ''@'localhost';"
                 " CREATE USER IF NOT EXISTS 'root'@'198.18.0.1' IDENTIFIED BY 'x';"
                 " CREATE DATABASE IF NOT EXISTS test;")
    answer = env.call("PUT", "/v1/dbserver", {"bind_address": env.db.address,
                                              "cluster": [env.web.address, env.other.address]}, 200).get_json()
    assert answer["changed"] is True
    assert sorted(answer["hardened"]) == sorted(["DROP USER IF EXISTS ''@'localhost';",
                                                 "DROP USER IF EXISTS 'root'@'198.18.0.1';"])
    again = env.call("PUT", "/v1/dbserver", {"bind_address": env.db.address,
                                             "cluster": [env.web.address, env.other.address]}, 200).get_json()
    assert again["changed"] is False and again["hardened"] == []
    for _ in range(60):
        if f"{env.db.address}:3306" in env.db.exec("ss -ltnH").stdout:
            break
        time.sleep(0.5)
    return env


@pytest.fixture(scope="module")
def alice(configured):
    env = configured
    env.call("POST", "/v1/databases", {"name": "alice_shop", "owner": "alice"}, 201)
    created = env.call("POST", "/v1/dbusers", {"name": "alice_web", "owner": "alice", "password": ALICE_PW,
                                               "hosts": [env.web.address], "databases": ["alice_shop"]}, 201)
    assert created.get_json()["hosts"] == ["localhost", env.web.address]
    return env


def test_the_server_is_hardened_and_listens_on_the_cluster_address_only(configured):
    env = configured
    accounts = env.root_sql("SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY 1").split()
    assert not [a for a in accounts if a.startswith("@")], accounts
    assert [a for a in accounts if a.startswith("root@")] == ["root@localhost"]
    assert "test" not in env.root_sql("SHOW DATABASES").split()
    plugin = env.root_sql("SELECT JSON_VALUE(Priv, '$.plugin') FROM mysql.global_priv "
                          "WHERE User = 'root' AND Host = 'localhost'").strip()
    assert plugin == "unix_socket"
    listening = [line.split()[3] for line in env.db.exec("ss -ltnH").stdout.splitlines() if ":3306" in line]
    assert listening == [f"{env.db.address}:3306"]


def test_the_web_node_connects_and_creates_a_table(alice):
    env = alice
    made = env.connect(env.web, "alice_web", ALICE_PW, "alice_shop",
                       "CREATE TABLE t (i INT); INSERT INTO t VALUES (42); SELECT i FROM t;")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "42"


def test_a_cluster_node_that_is_not_given_is_refused_by_mariadb(alice):
    env = alice
    refused = env.connect(env.other, "alice_web", ALICE_PW, "alice_shop", "SELECT 1")
    assert refused_with(refused, 1130), refused.stderr


def test_the_host_outside_the_cluster_cannot_reach_3306(alice):
    env = alice
    with pytest.raises(OSError):
        socket.create_connection((env.db.address, 3306), timeout=5).close()
    # And the same node reaches it once it is given as a cluster node: the refusal is the firewall's.
    table = env.db.exec("nft list table inet hostfleet_db").stdout
    assert env.web.address in table and "198.18.0.1 " not in table


def test_a_wrong_password_is_refused(alice):
    env = alice
    wrong = env.connect(env.web, "alice_web", "not the password", "alice_shop", "SELECT 1")
    assert refused_with(wrong, 1045), wrong.stderr


def test_the_grant_covers_exactly_one_database(alice):
    env = alice
    # `alice_shop` unescaped in a grant would also match `aliceXshop` and `alice_shop` with any one character.
    env.root_sql("CREATE DATABASE IF NOT EXISTS aliceXshop")
    try:
        other_db = env.connect(env.web, "alice_web", ALICE_PW, "aliceXshop", "SELECT 1")
        assert refused_with(other_db, 1044), other_db.stderr
    finally:
        env.root_sql("DROP DATABASE IF EXISTS aliceXshop")
    grants = env.root_sql(f"SHOW GRANTS FOR 'alice_web'@'{env.web.address}'")
    assert "`alice\\_shop`.*" in grants, grants
    assert "ON *.*" in grants and "GRANT USAGE ON *.*" in grants


def test_another_owners_user_cannot_reach_the_database(alice):
    env = alice
    env.call("POST", "/v1/databases", {"name": "bob_db", "owner": "bob"}, 201)
    env.call("POST", "/v1/dbusers", {"name": "bob_web", "owner": "bob", "password": BOB_PW,
                                     "hosts": [env.web.address], "databases": ["bob_db"]}, 201)
    assert env.connect(env.web, "bob_web", BOB_PW, "bob_db", "SELECT 1").returncode == 0
    refused = env.connect(env.web, "bob_web", BOB_PW, "alice_shop", "SELECT * FROM t")
    assert refused_with(refused, 1044), refused.stderr
    # Nor can bob's user be granted it, nor bob drop it.
    answer = env.call("POST", "/v1/dbusers/bob_web/grants", {"database": "alice_shop"}, 400)
    assert "database" in answer.get_json()["fields"]
    env.call("DELETE", "/v1/databases/alice_shop?owner=bob", status=404)
    env.call("DELETE", "/v1/dbusers/alice_web?owner=bob", status=404)
    assert "alice_shop" in env.root_sql("SHOW DATABASES").split()


def test_hostile_names_leave_the_mysql_schema_byte_for_byte_unchanged(alice):
    env = alice
    before = env.db.exec(MYSQL_DUMP).stdout
    databases = env.root_sql("SHOW DATABASES")
    assert "global_priv" in before
    for value in HOSTILE:
        for path, body in (("/v1/databases", {"name": value, "owner": "alice"}),
                           ("/v1/dbusers", {"name": value, "owner": "alice", "password": ALICE_PW}),
                           ("/v1/dbusers", {"name": "alice_h", "owner": "alice", "password": ALICE_PW,
                                            "databases": [value]}),
                           ("/v1/dbusers", {"name": "alice_h", "owner": "alice", "password": ALICE_PW,
                                            "hosts": [value]})):
            answer = env.call("POST", path, body)
            assert answer.status_code == 400, (body, answer.get_json())
        assert env.call("DELETE", f"/v1/databases/{quote(value, safe='')}").status_code in (400, 401, 404)
        env.call("PUT", "/v1/dbusers/alice_web", {"databases": [value]}, 400)
    after = env.db.exec(MYSQL_DUMP).stdout
    assert after == before
    assert env.root_sql("SHOW DATABASES") == databases
    # A hostile password is data: it is hashed, never parsed (this changes the user's row, so it comes after).
    env.call("PUT", "/v1/dbusers/alice_web", {"password": "a'; DROP DATABASE mysql; --"}, 200)
    assert env.connect(env.web, "alice_web", "a'; DROP DATABASE mysql; --", "alice_shop",
                       "SELECT i FROM t").stdout.strip() == "42"
    env.call("PUT", "/v1/dbusers/alice_web", {"password": ALICE_PW}, 200)
    assert "mysql" in env.root_sql("SHOW DATABASES").split()


def test_lists_give_sizes_and_grants(alice):
    env = alice
    listed = {d["name"]: d for d in env.call("GET", "/v1/databases?owner=alice", status=200).get_json()["items"]}
    assert set(listed) == {"alice_shop"}
    assert listed["alice_shop"]["size"] > 0
    users = {u["name"]: u for u in env.call("GET", "/v1/dbusers?owner=alice", status=200).get_json()["items"]}
    grants = users["alice_web"]["grants"]
    assert set(grants) == {"localhost", env.web.address}
    assert any("`alice\\_shop`.*" in g for g in grants[env.web.address])
    assert "IDENTIFIED" not in str(users) and not re.search(r"\*[0-9A-F]{40}", str(users))


def test_password_change_hosts_revoke_and_drop(alice):
    env = alice
    env.call("PUT", "/v1/dbusers/alice_web", {"password": "a new pass 333"}, 200)
    assert refused_with(env.connect(env.web, "alice_web", ALICE_PW, "alice_shop", "SELECT 1"), 1045)
    assert env.connect(env.web, "alice_web", "a new pass 333", "alice_shop", "SELECT 1").returncode == 0
    # The other cluster node added as a host: same password, same grant.
    env.call("PUT", "/v1/dbusers/alice_web", {"hosts": [env.web.address, env.other.address]}, 200)
    assert env.connect(env.other, "alice_web", "a new pass 333", "alice_shop", "SELECT i FROM t").stdout.strip() == "42"
    env.call("PUT", "/v1/dbusers/alice_web", {"hosts": [env.web.address]}, 200)
    assert refused_with(env.connect(env.other, "alice_web", "a new pass 333", "alice_shop", "SELECT 1"), 1130)
    env.call("DELETE", "/v1/dbusers/alice_web/grants/alice_shop", status=200)
    revoked = env.connect(env.web, "alice_web", "a new pass 333", "alice_shop", "SELECT 1")
    assert refused_with(revoked, 1044), revoked.stderr
    env.call("DELETE", "/v1/dbusers/alice_web", status=204)
    assert "alice_web" not in env.root_sql("SELECT User FROM mysql.user").split()
    env.call("DELETE", "/v1/databases/alice_shop", status=204)
    assert "alice_shop" not in env.root_sql("SHOW DATABASES").split()
    # Deleting bob's database takes its grants with it, also when one of them was taken back by hand.
    env.root_sql("REVOKE ALL PRIVILEGES ON `bob\\_db`.* FROM 'bob_web'@'localhost'")
    assert "bob\\_db" in env.root_sql(f"SHOW GRANTS FOR 'bob_web'@'{env.web.address}'")
    env.call("DELETE", "/v1/databases/bob_db", status=204)
    assert env.call("GET", "/v1/dbusers/bob_web", status=200).get_json()["databases"] == []
    assert "bob\\_db" not in env.root_sql(f"SHOW GRANTS FOR 'bob_web'@'{env.web.address}'")
    assert "bob_db" not in env.root_sql("SHOW DATABASES").split()



def test_deleting_the_owner_drops_their_databases_and_users_only(alice):
    env = alice
    env.call("POST", "/v1/databases", {"name": "bob_wiki", "owner": "bob", "charset": "latin1"}, 201)
    env.call("PUT", "/v1/dbusers/bob_web", {"databases": ["bob_wiki"]}, 200)
    env.call("POST", "/v1/databases", {"name": "carol_db", "owner": "carol"}, 201)
    removed = env.call("DELETE", "/v1/users/bob/data", status=200).get_json()
    assert removed["dbusers"] == ["bob_web"] and removed["databases"] == ["bob_wiki"]
    names = env.root_sql("SHOW DATABASES").split()
    assert "bob_wiki" not in names and "carol_db" in names
    assert "bob_web" not in env.root_sql("SELECT User FROM mysql.user").split()
    assert [d["name"] for d in env.call("GET", "/v1/databases", status=200).get_json()["items"]] == ["carol_db"]
    env.call("DELETE", "/v1/databases/carol_db", status=204)


def test_sizes_of_a_thousand_databases_come_in_one_query_under_a_second(configured):
    """The figure for the issue: the size list of a node with 1,000 databases (one table each)."""
    env = configured
    names = [f"size_{i:04d}" for i in range(1000)]
    env.db.exec(["mariadb"], input="".join(f"CREATE DATABASE {n}; CREATE TABLE {n}.t (i INT);\n" for n in names),
                timeout=900)
    try:
        config = env.client.client.application.config["AGENT_CONFIG"]
        from agent.ops import apply

        held = apply.load_records(config, db.DATABASES)
        apply.save_records(config, db.DATABASES, [*held, *({"name": n, "owner": "size", "engine": "mariadb",
                                                            "charset": "utf8mb4", "collation": "utf8mb4_unicode_ci"}
                                                           for n in names)])
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            listed = env.call("GET", "/v1/databases?owner=size", status=200).get_json()["items"]
            timings.append(time.perf_counter() - started)
        assert len(listed) == 1000 and all(d["size"] > 0 for d in listed)
        print(f"\nsizes of 1,000 databases: best {min(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms")
        assert min(timings) < 1.0
    finally:
        apply.save_records(config, db.DATABASES, held)
        env.db.exec(["mariadb"], input="".join(f"DROP DATABASE IF EXISTS {n};\n" for n in names), timeout=900)
