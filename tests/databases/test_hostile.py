"""A hostile corpus on every field of the databases API: each value is refused with a 4xx naming its field,
and nothing is indexed, nothing reaches the db node (its agent's files are byte for byte the same) and
MariaDB's `mysql` schema and databases are unchanged."""

from __future__ import annotations

SQL = "a'; DROP DATABASE mysql; --"
NAMES = [SQL, "x`; DROP DATABASE mysql; -- ", "`", "%", "shop%", "sh_p%", "a\\", "x\nDROP DATABASE mysql",
         "x\x00y", "shöp", "шоп", "x y", "x.y", "../y", "X", "alice_", "a" * 200, "", None, 17, [],
         {"a": 1}, True, "alice_" + "b" * 80]
PASSWORDS = ["short", "", None, 17, ["a long password"], "x" * 100_000, "bad\x00password"]
OWNERS = [SQL, "root", "nobody-here", "", 17, None, "../alice"]

# (method, path, field, base body): each hostile value goes into field of the base body.
CASES = [
    ("POST", "/databases", "name", {}, [*NAMES, "a" * 59]),
    ("POST", "/databases", "engine", {"name": "ok1"}, [SQL, "postgresql", "MARIADB", "", 1, None, ["mariadb"]]),
    ("POST", "/databases", "charset", {"name": "ok2"}, [SQL, "utf8", "latin1; DROP", "", 1, ["utf8mb4"]]),
    ("POST", "/databases", "collation", {"name": "ok3"}, [SQL, "latin1_swedish_ci", "utf8mb4_bin`", 1, ["x"]]),
    ("POST", "/databases", "body", None, [[], "text", 17]),
    ("POST", "/dbusers", "name", {"password": "a long password"}, NAMES),
    ("POST", "/dbusers", "password", {"name": "ok4"}, PASSWORDS),
    ("POST", "/dbusers", "databases", {"name": "ok5", "password": "a long password"},
     [SQL, 17, {"a": 1}, [SQL], ["alice_%"], ["alice\\_shop"], ["bob_blog"], ["mysql"], ["alice_nope"], [None],
      ["%"], ["alice_shop", "a" * 80]]),
    ("PUT", "/dbusers/{user}", "password", {}, PASSWORDS),
    ("PUT", "/dbusers/{user}", "databases", {}, [SQL, [SQL], ["alice_%"], ["bob_blog"], ["mysql"], [17]]),
    ("PUT", "/dbusers/{user}", "hosts", {}, [["0.0.0.0"], ["%"]]),
    ("PUT", "/dbusers/{user}", "owner", {}, ["bob"]),
    ("POST", "/dbusers/{user}/grants", "database", {}, [SQL, "%", "alice_%", "alice\\_shop", "bob_blog", "mysql", None,
                                                       17, ["alice_shop"], "a" * 100]),
]


def admin_owner_cases():
    return [("POST", "/databases", "owner", {"name": "ok6"}, OWNERS),
            ("POST", "/dbusers", "owner", {"name": "ok7", "password": "a long password"}, OWNERS)]


def snapshot(dbc) -> tuple:
    return (dbc.index("DatabaseIndex"), dbc.index("DbUserIndex"), dbc.cluster.tree(dbc.db),
            sorted(dbc.server.databases()), dbc.server.mysql_schema())


def test_every_field_refuses_the_hostile_corpus_and_nothing_is_made(dbc):
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    dbc.api("POST", "/databases", "bob", body={"name": "blog"}, status=201)
    user = dbc.api("POST", "/dbusers", body={"name": "app", "password": "a long password"}, status=201).get_json()
    before = snapshot(dbc)
    wrong = []
    cases = [(*case, "alice") for case in CASES] + [(*case, "root") for case in admin_owner_cases()]
    for method, path, field, base, values, actor in cases:
        for value in values:
            body = value if base is None else {**base, field: value}
            if actor == "root" and base is not None and "owner" not in body:
                body["owner"] = "alice"
            answer = dbc.api(method, path.format(user=user["id"]), actor, body=body)
            payload = answer.get_json() or {}
            fields = set(payload.get("fields") or {})
            # A body that is no JSON object is refused by the API's schema, as on every resource.
            named = (field == "body" and fields == {"_schema"}) or any(
                f == field or f.startswith(f"{field}[") or f.startswith(f"{field}.") for f in fields)
            if not (400 <= answer.status_code < 500 and named):
                wrong.append((method, path, field, repr(value)[:60], answer.status_code, payload))
    assert not wrong, "\n".join(map(str, wrong))
    assert snapshot(dbc) == before


def test_over_long_names_are_refused_on_the_master_with_the_engine_limit(dbc):
    before = snapshot(dbc)
    refused = dbc.api("POST", "/databases", body={"name": "a" * 59}, status=400).get_json()
    assert "64" in refused["fields"]["name"]
    refused = dbc.api("POST", "/dbusers", body={"name": "a" * 75, "password": "a long password"}, status=400)
    assert "80" in refused.get_json()["fields"]["name"]
    dbc.api("POST", "/databases", body={"name": "a" * 58}, status=201)  # 64 with the prefix
    assert snapshot(dbc)[0] == before[0] + ["alice_" + "a" * 58]
