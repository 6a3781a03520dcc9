"""The db role's agent ops without a server: name validation, the SQL each op sends, the routes' refusals.

A refused request must name its field and send MariaDB nothing: `run_sql` is replaced by a recorder that
fails the test when a hostile value got as far as the engine. The statements themselves run against a real
MariaDB in tests/databases/test_lab_mariadb.py.
"""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from agent import validation as v
from agent.ops import db
from agent.tests.ops_helpers import make_app, make_config, nft_usable

HOSTILE = [
    "a'; DROP DATABASE mysql; --",
    "alice_x'; DROP DATABASE mysql; --",
    "alice_`x`",
    "alice_x`; DROP DATABASE mysql; -- ",
    "alice_%",
    "alice_a%b",
    "alice_\\",
    "alice_x\nDROP DATABASE mysql",
    "alice_x\x00y",
    "alice_shöp",
    "alice_шоп",
    "alice_x y",
    "alice_x.y",
    "alice_x/../y",
    "alice_X",
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    "bob_shop",
    "alice",
    "alice_",
    "alice_" + "a" * 80,
    "",
    None,
    17,
    ["alice_x"],
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_database_names_are_refused_naming_the_field(value):
    with pytest.raises(v.ValidationError) as caught:
        v.db_object_name(value, "alice", "name", kind="database")
    assert caught.value.field == "name"
    assert caught.value.message


def test_names_follow_the_owner_prefix_and_the_engine_limits():
    assert v.db_object_name("alice_shop", "alice") == "alice_shop"
    assert v.db_object_name("alice_shop_2", "alice") == "alice_shop_2"
    assert v.db_object_name("my-co_wiki", "my-co") == "my-co_wiki"
    longest_db = "alice_" + "a" * (64 - 6)
    assert v.db_object_name(longest_db, "alice") == longest_db
    with pytest.raises(v.ValidationError, match="longer than 64 characters"):
        v.db_object_name(longest_db + "a", "alice")
    longest_user = "alice_" + "u" * (80 - 6)
    assert v.db_object_name(longest_user, "alice", kind="user") == longest_user
    with pytest.raises(v.ValidationError, match="longer than 80"):
        v.db_object_name(longest_user + "u", "alice", kind="user")
    with pytest.raises(v.ValidationError, match="longer than 63"):
        v.db_object_name("alice_" + "p" * 58, "alice", engine="postgresql")
    with pytest.raises(v.ValidationError, match="owner's prefix alice_"):
        v.db_object_name("bob_shop", "alice")
    with pytest.raises(v.ValidationError, match="'%' is not allowed"):
        v.db_object_name("alice_a%", "alice")


def test_the_grant_pattern_matches_one_database_only():
    # Unescaped, `alice_db` in a grant also matches `alicexdb` (the `_` is a one-character wildcard).
    assert db.grant_pattern("alice_db") == "`alice\\_db`"
    assert db.grant_pattern("a%b_c") == "`a\\%b\\_c`"
    sql = db.grant_sql("alice_u", ["localhost", "198.18.0.12"], "alice_db")
    assert sql == ("GRANT ALL PRIVILEGES ON `alice\\_db`.* TO 'alice_u'@'localhost';\n"
                   "GRANT ALL PRIVILEGES ON `alice\\_db`.* TO 'alice_u'@'198.18.0.12';\n")
    assert db.revoke_sql("alice_u", ["localhost"], "alice_db") == (
        "REVOKE ALL PRIVILEGES ON `alice\\_db`.* FROM 'alice_u'@'localhost';\n")


def test_quoting_doubles_what_would_end_a_literal_or_identifier():
    assert db.quote_ident("a`b") == "`a``b`"
    assert db.quote_string("a'b\\") == "'a''b\\\\'"


def test_the_password_reaches_mariadb_only_as_its_hash():
    password = "a'; DROP DATABASE mysql; -- \\ `x` ü"
    expected = "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()
    assert db.native_hash(password) == expected
    # MariaDB's own PASSWORD('password') value.
    assert db.native_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
    sql = db.create_user_sql("alice_u", ["localhost"], db.native_hash(password))
    assert password not in sql and "DROP" not in sql
    assert sql == (f"CREATE USER 'alice_u'@'localhost' IDENTIFIED BY PASSWORD '{expected}' "
                   f"WITH MAX_USER_CONNECTIONS {db.MAX_USER_CONNECTIONS};\n")


def test_hosts_are_addresses_and_always_include_localhost():
    assert db.validate_hosts(["198.18.0.12", "198.18.0.11", "198.18.0.12"]) == [
        "localhost", "198.18.0.11", "198.18.0.12"]
    assert db.validate_hosts(None) == ["localhost"]
    for bad, field in (("%", "hosts[0]"), ("198.18.0.%", "hosts[0]"), ("localhost'--", "hosts[0]"),
                       ("example.com", "hosts[0]"), ("fe80::1%eth0", "hosts[0]"), ("fe80::1%%", "hosts[0]")):
        with pytest.raises(v.ValidationError) as caught:
            db.validate_hosts([bad])
        assert caught.value.field == field
    with pytest.raises(v.ValidationError) as caught:
        db.validate_hosts("198.18.0.12")
    assert caught.value.field == "hosts"


def test_charset_and_collation_come_from_the_allow_list():
    assert db.validate_charset({}) == ("utf8mb4", "utf8mb4_unicode_ci")
    assert db.validate_charset({"charset": "latin1", "collation": "latin1_bin"}) == ("latin1", "latin1_bin")
    for body, field in (({"charset": "utf8mb4; DROP DATABASE mysql"}, "charset"),
                        ({"charset": "utf8mb4", "collation": "latin1_bin"}, "collation"),
                        ({"collation": "utf8mb4_bin COLLATE x"}, "collation")):
        with pytest.raises(v.ValidationError) as caught:
            db.validate_charset(body)
        assert caught.value.field == field


@pytest.fixture
def no_engine(monkeypatch):
    """Any statement sent to MariaDB fails the test (a refused request must send nothing)."""
    sent: list[str] = []

    def refuse(sql: str):
        sent.append(sql)
        raise AssertionError(f"SQL reached the engine: {sql!r}")

    monkeypatch.setattr(db, "run_sql", refuse)
    return sent


def test_hostile_requests_to_the_routes_are_400_naming_the_field_and_send_nothing(tmp_path, no_engine):
    config, _reloads, client = make_app(tmp_path)
    cases = []
    for value in HOSTILE:
        cases.append(("POST", "/v1/databases", {"name": value, "owner": "alice"}, "name"))
        cases.append(("POST", "/v1/dbusers", {"name": value, "owner": "alice", "password": "long enough"}, "name"))
    cases += [
        ("POST", "/v1/databases", {"name": "alice_db", "owner": "alice'--"}, "owner"),
        ("POST", "/v1/databases", {"name": "alice_db", "owner": "alice", "charset": "x' OR 1"}, "charset"),
        ("POST", "/v1/databases", {"name": "alice_db", "owner": "alice", "engine": "oracle"}, "engine"),
        ("POST", "/v1/databases", {"name": "alice_db", "owner": "alice", "extra": 1}, "extra"),
        ("POST", "/v1/dbusers", {"name": "alice_u", "owner": "alice", "password": "short"}, "password"),
        ("POST", "/v1/dbusers", {"name": "alice_u", "owner": "alice", "password": "line\nbreak here"}, "password"),
        ("POST", "/v1/dbusers", {"name": "alice_u", "owner": "alice", "password": "long enough",
                                 "hosts": ["%"]}, "hosts[0]"),
        ("POST", "/v1/dbusers", {"name": "alice_u", "owner": "alice", "password": "long enough",
                                 "databases": ["mysql"]}, "databases[0]"),
        ("POST", "/v1/dbusers", {"name": "alice_u", "owner": "alice", "password": "long enough",
                                 "databases": ["alice_%"]}, "databases[0]"),
        ("PUT", "/v1/dbserver", {"bind_address": "0.0.0.0; x", "cluster": []}, "bind_address"),
        ("PUT", "/v1/dbserver", {"bind_address": "198.18.0.13", "cluster": ["198.18.0.0/24 x"]}, "cluster[0]"),
    ]
    for method, path, body, field in cases:
        answer = client.request(method, path, body)
        assert answer.status_code == 400, (body, answer.get_json())
        assert field in answer.get_json()["fields"], (body, answer.get_json())
    assert no_engine == []
    assert not (config.state_dir / "data" / "databases.json").exists()
    assert not (config.state_dir / "data" / "dbusers.json").exists()


def test_objects_not_in_the_agents_record_are_never_touched(tmp_path, no_engine):
    config, _reloads, client = make_app(tmp_path)
    for path in ("/v1/databases/mysql", "/v1/databases/alice_db", "/v1/dbusers/root", "/v1/dbusers/alice_u"):
        assert client.request("DELETE", path).status_code == 404
    assert client.request("PUT", "/v1/dbusers/root", {"password": "long enough"}).status_code == 404
    assert no_engine == []


def test_a_user_is_granted_only_its_owners_databases(tmp_path, no_engine):
    config, _ = make_config(tmp_path)
    from agent.ops import apply

    apply.save_records(config, db.DATABASES, [
        {"name": "bob_db", "owner": "bob", "engine": "mariadb", "charset": "utf8mb4",
         "collation": "utf8mb4_unicode_ci"},
        {"name": "alice_bob_db", "owner": "alice_bob", "engine": "mariadb", "charset": "utf8mb4",
         "collation": "utf8mb4_unicode_ci"}])
    for owner, database in (("alice", "bob_db"), ("alice", "alice_bob_db")):
        with pytest.raises(v.ValidationError) as caught:
            db.create_user(config, {"name": f"{owner}_u", "owner": owner, "password": "long enough",
                                    "databases": [database]})
        assert caught.value.field == "databases[0]"
    # A request naming an owner touches only that owner's objects.
    with pytest.raises(apply.NotFound):
        db.delete_database(config, "bob_db", owner="alice")
    assert no_engine == []


def test_the_db_firewall_table_passes_nft_and_admits_only_the_cluster(tmp_path):
    reason = nft_usable()
    if reason:
        pytest.skip(reason)
    script = db.render_firewall(["198.18.0.11", "198.18.0.13", "2001:db8::1"]).decode()
    assert "ip saddr { 198.18.0.11, 198.18.0.13 } tcp dport 3306 accept" in script
    assert "ip6 saddr { 2001:db8::1 } tcp dport 3306 accept" in script
    assert script.rstrip().endswith("tcp dport 3306 reject with tcp reset\n    }\n}")
    path = tmp_path / "db.nft"
    path.write_text(script)
    check = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "bind-address = 198.18.0.13" in db.render_cnf("198.18.0.13").decode()


def test_the_agent_loads_the_written_db_table_again_at_start(tmp_path):
    log = tmp_path / "loads.log"
    config, _ = make_config(tmp_path, roles=["db"],
                            reload_commands={"db_firewall": ["sh", "-c", f"echo loaded >> {log}"]})
    assert db.load_firewall(config) is False
    assert not log.exists()
    path = config.root / db.SERVER_FIREWALL
    path.parent.mkdir(parents=True)
    path.write_bytes(db.render_firewall(["198.18.0.12"]))
    assert db.load_firewall(config) is True
    assert log.read_text() == "loaded\n"


def _corpus() -> list[tuple[str, object]]:
    import json
    from pathlib import Path

    corpus = json.loads((Path(db.__file__).parents[1] / "tests" / "hostile_corpus.json").read_text())
    return [(item["why"], item["repeat"][0] * item["repeat"][1] if "repeat" in item else item["value"])
            for item in corpus["values"]]


DB_CASES = {
    "databases.name": (lambda x: ("POST", "/v1/databases", {"name": x, "owner": "alice"}), "name"),
    "databases.owner": (lambda x: ("POST", "/v1/databases", {"name": "alice_db", "owner": x}), "owner"),
    "databases.charset": (lambda x: ("POST", "/v1/databases", {"name": "alice_db", "owner": "alice", "charset": x}),
                          "charset"),
    "databases.collation": (lambda x: ("POST", "/v1/databases", {"name": "alice_db", "owner": "alice",
                                                                 "collation": x}), "collation"),
    "databases.engine": (lambda x: ("POST", "/v1/databases", {"name": "alice_db", "owner": "alice", "engine": x}),
                         "engine"),
    "dbusers.name": (lambda x: ("POST", "/v1/dbusers", {"name": x, "owner": "alice", "password": "long enough"}),
                     "name"),
    "dbusers.hosts": (lambda x: ("POST", "/v1/dbusers", {"name": "alice_u", "owner": "alice",
                                                         "password": "long enough", "hosts": [x]}), "hosts[0]"),
    "dbusers.databases": (lambda x: ("POST", "/v1/dbusers", {"name": "alice_u", "owner": "alice",
                                                             "password": "long enough", "databases": [x]}),
                          "databases[0]"),
    "dbserver.bind_address": (lambda x: ("PUT", "/v1/dbserver", {"bind_address": x, "cluster": []}),
                              "bind_address"),
    "dbserver.cluster": (lambda x: ("PUT", "/v1/dbserver", {"bind_address": "198.18.0.13", "cluster": [x]}),
                         "cluster[0]"),
}


@pytest.mark.parametrize("case", DB_CASES)
def test_the_agents_hostile_corpus_on_every_db_field(tmp_path, no_engine, case):
    """Every value of agent/tests/hostile_corpus.json: 400 naming the field, nothing sent or written."""
    config, _reloads, client = make_app(tmp_path)
    build, field = DB_CASES[case]
    for why, value in _corpus():
        if case == "databases.collation" and value in (None, ""):
            continue  # no collation: the charset's default
        method, path, body = build(value)
        answer = client.request(method, path, body)
        assert answer.status_code == 400, (case, why, answer.get_json())
        assert field in answer.get_json()["fields"], (case, why, answer.get_json())
    assert no_engine == []
    assert not (config.state_dir / "data").exists() or not any((config.state_dir / "data").iterdir())
    assert not (config.root / db.SERVER_CNF).exists() and not (config.root / db.SERVER_FIREWALL).exists()


def _alice_with_a_granted_user(config):
    from agent.ops import apply

    apply.save_records(config, db.DATABASES, [
        {"name": name, "owner": "alice", "engine": "mariadb", "charset": "utf8mb4",
         "collation": "utf8mb4_unicode_ci"} for name in ("alice_db", "alice_db2")])
    apply.save_records(config, db.DBUSERS, [
        {"name": "alice_u", "owner": "alice", "engine": "mariadb", "hosts": ["localhost"],
         "databases": ["alice_db"]}])


def test_owner_query_scopes_every_change_and_read_of_one_object(tmp_path, no_engine):
    """`?owner=` is honoured on each route of one database or user, not only on DELETE: a request
    scoped to bob never reads, changes, grants or revokes alice's objects (404, nothing sent)."""
    config, _reloads, client = make_app(tmp_path)
    _alice_with_a_granted_user(config)
    before = [(config.state_dir / "data" / f).read_bytes() for f in ("databases.json", "dbusers.json")]
    for method, path, body in (
        ("GET", "/v1/databases/alice_db?owner=bob", None),
        ("GET", "/v1/dbusers/alice_u?owner=bob", None),
        ("PUT", "/v1/dbusers/alice_u?owner=bob", {"password": "bob sets alice's password"}),
        ("PUT", "/v1/dbusers/alice_u?owner=bob", {"hosts": ["198.18.0.66"], "password": "long enough"}),
        ("POST", "/v1/dbusers/alice_u/grants?owner=bob", {"database": "alice_db2"}),
        ("DELETE", "/v1/dbusers/alice_u/grants/alice_db?owner=bob", None),
    ):
        answer = client.request(method, path, body)
        assert answer.status_code == 404, (method, path, answer.get_json())
    assert client.request("GET", "/v1/dbusers/alice_u?owner=alice").status_code == 200
    assert client.request("GET", "/v1/databases/alice_db?owner=alice").status_code == 200
    assert no_engine == []
    assert [(config.state_dir / "data" / f).read_bytes() for f in ("databases.json", "dbusers.json")] == before


def test_a_grant_request_names_its_own_field(tmp_path, no_engine):
    config, _reloads, client = make_app(tmp_path)
    _alice_with_a_granted_user(config)
    for body, field in (({"database": None}, "database"), ({"database": "alice_%"}, "database"),
                        ({"database": "bob_db"}, "database"), ({"database": "alice_nope"}, "database"),
                        ({"database": "alice_db2", "owner": "bob"}, "owner")):
        answer = client.request("POST", "/v1/dbusers/alice_u/grants", body)
        assert answer.status_code == 400, (body, answer.get_json())
        assert field in answer.get_json()["fields"], (body, answer.get_json())
    assert no_engine == []


def test_a_name_in_a_longer_owners_prefix_is_that_owners(tmp_path, monkeypatch):
    """Logins may hold `_`: alice_bob_shop fits alice's prefix and alice_bob's. With alice_bob known on the
    node (an account, or objects held), alice may not take names in alice_bob_'s space (409 naming name,
    nothing sent); alice_bob may, and alice keeps her own."""
    from agent.ops import apply

    config, _ = make_config(tmp_path)
    sent: list[str] = []
    monkeypatch.setattr(db, "run_sql", lambda sql: sent.append(sql) or [])
    passwd = config.root / "etc" / "passwd"
    passwd.write_text(passwd.read_text() + "alice_bob:x:1003:1003::/home/alice_bob:/bin/bash\n")
    for create, body in ((db.create_database, {"name": "alice_bob_shop", "owner": "alice"}),
                         (db.create_user, {"name": "alice_bob_shop", "owner": "alice", "password": "long enough"})):
        with pytest.raises(apply.Conflict) as caught:
            create(config, body)
        assert caught.value.field == "name" and "alice_bob" in str(caught.value)
    assert sent == []
    assert db.create_database(config, {"name": "alice_bob_shop", "owner": "alice_bob"})["owner"] == "alice_bob"
    assert db.create_database(config, {"name": "alice_shop", "owner": "alice"})["owner"] == "alice"
    # Known only by what it holds here (no account line): still alice_bob's space.
    passwd.write_text(passwd.read_text().replace("alice_bob:x:1003:1003::/home/alice_bob:/bin/bash\n", ""))
    with pytest.raises(apply.Conflict):
        db.create_user(config, {"name": "alice_bob_u", "owner": "alice", "password": "long enough"})
    assert db.create_user(config, {"name": "alice_bob_u", "owner": "alice_bob",
                                   "password": "long enough"})["owner"] == "alice_bob"
