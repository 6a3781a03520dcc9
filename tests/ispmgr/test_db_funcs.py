"""The database funcs (`db`, `db.edit`, `db.delete`) against real agents and a private MariaDB: what a billing
system or a customer makes through /ispmgr is made in MariaDB, in JSON and XML, as the administrator naming the
owner, with su= and as the customer; refusals are doc.error naming the parameter, and nothing is made."""

from __future__ import annotations

import pytest

from tests.ispmgr.conftest import Billing


@pytest.fixture
def root(dbc):  # noqa: F811
    """The administrator root as a billing client (authinfo); a web node, a db node, alice and bob."""
    return Billing(dbc.client)


def names(doc: dict) -> list[str]:
    return [e["name"]["$"] for e in doc.get("elem", [])]


def test_create_with_a_new_user_list_view_and_delete_in_json(dbc, root):  # noqa: F811
    """db.edit as StereoFlo's library sends it (name, owner, username, password, confirm, remote_access,
    server, addr_list): the database and its user exist in MariaDB and the user connects; listed, shown,
    dropped."""
    made = root.json("db.edit", "POST", sok="ok", name="shop", owner="alice", username="app",
                     password="a long password", confirm="a long password", remote_access="on",
                     server="MySQL", addr_list="")
    assert "error" not in made and "ok" in made and made["id"]["$"] == "alice_shop", made
    assert "alice_shop" in dbc.server.databases()
    assert dbc.server.try_sql("CREATE TABLE t (id INT);", "alice_app", "a long password", "alice_shop") is None

    listed = root.json("db")["elem"]
    assert [(e["name"]["$"], e["owner"]["$"], e["type"]["$"], e["server"]["$"]) for e in listed] == [
        ("alice_shop", "alice", "mysql", "db1")]
    view = Billing(dbc.client, "alice").json("db.edit", elid="alice_shop")
    assert view["name"]["$"] == "alice_shop" and view["charset"]["$"] == "utf8mb4"
    assert view["users"]["$"] == "alice_app"

    assert "ok" in root.json("db.delete", elid="alice_shop->MySQL")
    assert "alice_shop" not in dbc.server.databases() and dbc.index("DatabaseIndex") == []
    assert dbc.index("DbUserIndex") == ["alice_app"]  # a user outlives the database, as on ISPmanager


def test_customer_in_xml_grants_an_existing_user_and_changes_its_password(dbc):  # noqa: F811
    """alice (level 16, out=xml) makes two databases; db.edit with elid and user= grants her existing user the
    second one, and with username= and password= changes its password."""
    alice = Billing(dbc.client, "alice")
    first = alice.xml("db.edit", sok="ok", name="alice_one", username="alice_app", password="first password")
    assert first.find("error") is None and first.findtext("id") == "alice_one"
    assert alice.xml("db.edit", sok="ok", name="two").findtext("id") == "alice_two"
    listed = alice.xml("db")
    assert [e.findtext("name") for e in listed.findall("elem")] == ["alice_one", "alice_two"]

    granted = alice.xml("db.edit", sok="ok", elid="alice_two", user="alice_app")
    assert granted.find("ok") is not None, granted
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "first password", "alice_two") is None
    changed = alice.xml("db.edit", sok="ok", elid="alice_one", username="app", password="second password")
    assert changed.find("ok") is not None
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "second password", "alice_one") is None
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "first password", "alice_one") is not None
    assert dbc.server.try_sql("SELECT 1;", "alice_app", "second password", "alice_two") is None


def test_su_acts_as_the_customer_and_a_customer_sees_only_their_own(dbc, root):  # noqa: F811
    """root with su=bob makes bob's database (no owner needed); alice neither lists, views, changes nor drops it;
    alice cannot name bob as owner nor act as him."""
    assert root.json("db.edit", sok="ok", su="bob", name="blog")["id"]["$"] == "bob_blog"
    alice = Billing(dbc.client, "alice")
    assert names(alice.json("db")) == []
    assert names(root.json("db", su="bob")) == ["bob_blog"]
    for func, params in (("db.edit", {"elid": "bob_blog"}), ("db.delete", {"elid": "bob_blog"}),
                         ("db.edit", {"elid": "bob_blog", "sok": "ok", "user": "bob_x"})):
        error = alice.json(func, **params)["error"]
        assert (error["$type"], error["$object"]) == ("value", "elid"), (func, error)
    error = alice.json("db.edit", sok="ok", name="bob_evil", owner="bob")["error"]
    assert error["$object"] == "owner", error
    assert alice.json("db", su="bob")["error"]["$object"] == "su"
    assert dbc.server.databases() == {"bob_blog"}


def test_refusals_name_the_parameter_and_make_nothing(dbc, root):  # noqa: F811
    """A bad name, an unknown owner, a missing owner, a taken name, a confirm that differs, a new user without a
    password, an unknown user=, another customer's user (a name is the owner's own: `alice_bob_web`), hostile
    values: doc.error naming each, nothing in MariaDB."""
    root.json("db.edit", sok="ok", name="taken", owner="alice")
    root.json("db.edit", sok="ok", name="blog", owner="bob", username="web", password="bobs password")
    cases = [
        ({"name": "bad name!", "owner": "alice"}, "value", "name"),
        ({"name": "x", "owner": "nobody"}, "value", "owner"),
        ({"name": "x"}, "value", "owner"),
        ({"name": "taken", "owner": "alice"}, "exists", "name"),
        ({"name": "x", "owner": "alice", "username": "u", "password": "a long password", "confirm": "other"},
         "value", "confirm"),
        ({"name": "x", "owner": "alice", "username": "u"}, "value", "password"),
        ({"name": "x", "owner": "alice", "user": "alice_nosuch"}, "value", "user"),
        ({"name": "x", "owner": "alice", "password": "a long password"}, "value", "username"),
        ({"name": "x", "owner": "alice", "user": "bob_web"}, "value", "user"),
        ({"name": "x", "owner": "alice", "username": "u", "password": "short"}, "value", "password"),
        ({"name": "x\x00; DROP DATABASE mysql", "owner": "alice"}, "value", "name"),
        ({"name": "x", "owner": "alice", "charset": "latin1'; --"}, "value", "charset"),
        ({"name": "x", "owner": "alice", "username": "u`x", "password": "a long password"}, "value", "username"),
        ({"name": "x", "owner": "alice", "user": "a\x00b"}, "value", "user"),
        ({"name": "y" * 80, "owner": "alice"}, "value", "name"),
    ]
    for params, type_, object_ in cases:
        for out in ("json", "xml"):
            if out == "json":
                error = root.json("db.edit", sok="ok", **params)["error"]
                seen = (error["$type"], error["$object"], bool(error["detail"]["$"]))
            else:
                error = root.xml("db.edit", sok="ok", **params).find("error")
                seen = (error.get("type"), error.get("object"), bool(error.findtext("msg")))
            assert seen == (type_, object_, True), (params, out, seen)
    assert dbc.server.databases() == {"alice_taken", "bob_blog"}
    assert dbc.index("DbUserIndex") == ["bob_web"]
    assert dbc.index("DatabaseIndex") == ["alice_taken", "bob_blog"]
    unknown = root.json("db.delete", elid="alice_taken, alice_nosuch")["error"]
    assert (unknown["$type"], unknown["$object"]) == ("value", "elid")
    assert dbc.server.databases() == {"alice_taken", "bob_blog"}


def test_limit_db_of_the_preset_is_a_limit_error(dbc, root):  # noqa: F811
    """alice's preset allows one database (limit_db=1): the second db.edit is type limit, nothing made."""
    assert "ok" in root.json("preset.edit", sok="ok", name="one-db", limit_db="1")
    assert "ok" in root.json("user.edit", sok="ok", elid="alice", preset="one-db")
    assert "ok" in root.json("db.edit", sok="ok", su="alice", name="first")
    error = root.json("db.edit", sok="ok", su="alice", name="second")["error"]
    assert error["$type"] == "limit" and error["$object"] == "name" and "1" in error["detail"]["$"], error
    assert dbc.server.databases() == {"alice_first"}


def test_a_refused_user_drops_the_database_made_for_it(dbc, root):  # noqa: F811
    """limit_db_users=0 refuses the new user after the database was made: the database is dropped again and
    the answer says so, naming username."""
    root.json("preset.edit", sok="ok", name="no-users", limit_db_users="0")
    root.json("user.edit", sok="ok", elid="alice", preset="no-users")
    error = root.json("db.edit", sok="ok", su="alice", name="shop", username="app", password="a long password")
    error = error["error"]
    assert error["$type"] == "limit" and error["$object"] == "username", error
    assert "the database was not created" in error["detail"]["$"]
    assert dbc.server.databases() == set() and dbc.index("DatabaseIndex") == []
    assert dbc.server.accounts() == set()
