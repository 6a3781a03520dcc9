"""/api/v1/databases and /api/v1/dbusers against real agents and a real MariaDB: what a customer makes
through the master is made in MariaDB, answers the connection details, and goes with its owner."""

from __future__ import annotations


def test_a_customer_creates_a_database_and_a_user_that_connects_and_makes_a_table(dbc):
    made = dbc.api("POST", "/databases", body={"name": "shop"}, status=201).get_json()
    assert made["name"] == "alice_shop" and made["owner"] == "alice" and made["node"] == "db1"
    assert made["connection"] == {"host": "127.0.0.1", "port": 3306, "database": "alice_shop"}
    assert made["notices"] == ["name prefixed with alice_: alice_shop"]
    assert "alice_shop" in dbc.server.databases()

    user = dbc.api("POST", "/dbusers", body={"name": "alice_app", "password": "a long password",
                                            "databases": ["shop"]}, status=201).get_json()
    assert user["name"] == "alice_app" and user["databases"] == ["alice_shop"]
    assert "password" not in user and "hash" not in user
    assert "127.0.0.1" in user["hosts"]  # the web node may connect
    assert dbc.server.try_sql("CREATE TABLE t (id INT); INSERT INTO t VALUES (1);", "alice_app",
                              "a long password", "alice_shop") is None
    # the password is on the node only: nothing of it in the master's database
    from app.extensions import db
    from app.models import DbUserIndex
    with dbc.app.app_context():
        row = db.session.query(DbUserIndex).one()
        assert {c.name for c in DbUserIndex.__table__.columns} == {"id", "name", "owner_id", "node_id", "claimed_at"}
        assert row.name == "alice_app"

    listed = dbc.api("GET", "/databases", status=200).get_json()
    assert [(d["name"], d["available"]) for d in listed["items"]] == [("alice_shop", True)]
    assert listed["items"][0]["size"] > 0  # the table's pages
    shown = dbc.api("GET", f"/databases/{made['id']}", status=200).get_json()
    assert shown["connection"]["database"] == "alice_shop" and shown["charset"] == "utf8mb4"
    users = dbc.api("GET", "/dbusers", status=200).get_json()["items"]
    assert [u["name"] for u in users] == ["alice_app"] and all("password" not in u for u in users)


def test_password_change_grant_and_revoke(dbc):
    dbc.api("POST", "/databases", body={"name": "alice_one"}, status=201)
    dbc.api("POST", "/databases", body={"name": "alice_two"}, status=201)
    user = dbc.api("POST", "/dbusers", body={"name": "app", "password": "first password"}, status=201).get_json()
    assert user["name"] == "alice_app" and user["databases"] == []
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "first password", "alice_one") is not None

    granted = dbc.api("POST", f"/dbusers/{user['id']}/grants", body={"database": "one"}, status=200).get_json()
    assert granted["databases"] == ["alice_one"]
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "first password", "alice_one") is None
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "first password", "alice_two") is not None

    dbc.api("PUT", f"/dbusers/{user['id']}", body={"password": "second password"}, status=200)
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "first password", "alice_one") is not None
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "second password", "alice_one") is None

    changed = dbc.api("PUT", f"/dbusers/{user['id']}", body={"databases": ["alice_one", "two"]}, status=200)
    assert changed.get_json()["databases"] == ["alice_one", "alice_two"]
    revoked = dbc.api("DELETE", f"/dbusers/{user['id']}/grants/alice_one", status=200).get_json()
    assert revoked["databases"] == ["alice_two"]
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "second password", "alice_one") is not None

    dbc.api("DELETE", f"/dbusers/{user['id']}", status=204)
    assert dbc.server.accounts() == set() and dbc.index("DbUserIndex") == []


def test_another_customers_user_cannot_reach_the_database_nor_be_granted_it(dbc):
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    dbc.api("POST", "/dbusers", "bob", body={"name": "web", "password": "bobs password"}, status=201)
    bob_user = dbc.api("GET", "/dbusers", "bob", status=200).get_json()["items"][0]
    refused = dbc.api("POST", f"/dbusers/{bob_user['id']}/grants", "bob", body={"database": "alice_shop"},
                      status=400).get_json()
    assert set(refused["fields"]) == {"database"}
    assert dbc.server.try_sql("SELECT 1;", "bob_web", "bobs password", "alice_shop") is not None


def test_deleting_a_database_drops_it_and_deleting_the_customer_drops_the_rest(dbc):
    shop = dbc.api("POST", "/databases", body={"name": "shop"}, status=201).get_json()
    dbc.api("POST", "/databases", body={"name": "wiki"}, status=201)
    dbc.api("POST", "/dbusers", body={"name": "app", "password": "a long password", "databases": ["shop", "wiki"]},
            status=201)
    dbc.api("POST", "/databases", "bob", body={"name": "blog"}, status=201)
    dbc.api("DELETE", f"/databases/{shop['id']}", status=204)
    assert dbc.server.databases() == {"alice_wiki", "bob_blog"}

    alice_id = dbc.api("GET", "/users", "root", status=200).get_json()
    alice_id = next(u["id"] for u in alice_id["items"] if u["name"] == "alice")
    report = dbc.api("DELETE", f"/users/{alice_id}", "root", status=200).get_json()
    assert report["deleted"] is True, report
    assert dbc.server.databases() == {"bob_blog"}
    assert {user for user, _ in dbc.server.accounts()} == set()
    assert dbc.index("DatabaseIndex") == ["bob_blog"] and dbc.index("DbUserIndex") == []


def test_plan_limits_count_databases_and_database_users(dbc):
    dbc.api("POST", "/plans", "root", body={"name": "small", "limits": {"databases": 1, "dbusers": 1},
                                            "roles": ["web", "dns", "mail", "db"]}, status=201)
    alice = next(u for u in dbc.api("GET", "/users", "root", status=200).get_json()["items"] if u["name"] == "alice")
    dbc.api("PUT", f"/users/{alice['id']}", "root", body={"plan": "small"}, status=200)
    dbc.api("POST", "/databases", body={"name": "one"}, status=201)
    over = dbc.api("POST", "/databases", body={"name": "two"}, status=409).get_json()
    assert set(over["fields"]) == {"name"} and "plan allows 1 database, and 1 is in use" in over["error"]
    dbc.api("POST", "/dbusers", body={"name": "one", "password": "a long password"}, status=201)
    over = dbc.api("POST", "/dbusers", body={"name": "two", "password": "a long password"}, status=409).get_json()
    assert set(over["fields"]) == {"name"}
    assert dbc.server.databases() == {"alice_one"} and {u for u, _ in dbc.server.accounts()} == {"alice_one"}


def test_a_user_without_the_db_role_or_without_a_db_node_is_refused_naming_the_field(dbc, cluster):
    cluster.user("carol")  # the default roles: web, dns, mail
    refused = dbc.api("POST", "/databases", "carol", body={"name": "shop"}, status=403).get_json()
    assert set(refused["fields"]) == {"owner"}
    assert dbc.index("DatabaseIndex") == [] and dbc.server.databases() == set()
