"""Every /api/v1/databases and /api/v1/dbusers route and every Databases page × {owner, other user, admin,
anonymous}. alice owns the data, bob is the other user, root the administrator; alice's database and database
user are made again before each request, so a delete by one actor does not hide what the next may do."""

from __future__ import annotations

from tests.conftest import Users, csrf_from
from tests.userdata.conftest import basic

ACTORS = ("owner", "other", "admin", "anonymous")
HEADERS = {"owner": basic("alice"), "other": basic("bob"), "admin": basic("root"), "anonymous": {}}

# (method, path, body, {actor: status})
API = [
    ("GET", "/databases", None, {"owner": 200, "other": 200, "admin": 200, "anonymous": 401}),
    ("POST", "/databases", {"name": "alice_new", "owner": "alice"},
     {"owner": 201, "other": 400, "admin": 201, "anonymous": 401}),
    ("GET", "/databases/{db}", None, {"owner": 200, "other": 404, "admin": 200, "anonymous": 401}),
    ("DELETE", "/databases/{db}", None, {"owner": 204, "other": 404, "admin": 204, "anonymous": 401}),
    ("GET", "/dbusers", None, {"owner": 200, "other": 200, "admin": 200, "anonymous": 401}),
    ("POST", "/dbusers", {"name": "alice_new", "owner": "alice", "password": "a long password"},
     {"owner": 201, "other": 400, "admin": 201, "anonymous": 401}),
    ("GET", "/dbusers/{user}", None, {"owner": 200, "other": 404, "admin": 200, "anonymous": 401}),
    ("PUT", "/dbusers/{user}", {"password": "another long one"},
     {"owner": 200, "other": 404, "admin": 200, "anonymous": 401}),
    ("POST", "/dbusers/{user}/grants", {"database": "alice_shop"},
     {"owner": 200, "other": 404, "admin": 200, "anonymous": 401}),
    ("DELETE", "/dbusers/{user}/grants/alice_shop", None,
     {"owner": 200, "other": 404, "admin": 200, "anonymous": 401}),
    ("DELETE", "/dbusers/{user}", None, {"owner": 204, "other": 404, "admin": 204, "anonymous": 401}),
]


def ensure(dbc) -> dict:
    """alice's database alice_shop and user alice_app (granted it), made by root when missing; their ids."""
    ids = {}
    for kind, name, body in (("databases", "alice_shop", {}),
                             ("dbusers", "alice_app", {"password": "a long password", "databases": ["alice_shop"]})):
        items = dbc.api("GET", f"/{kind}", "root", status=200).get_json()["items"]
        found = next((i for i in items if i["name"] == name), None)
        if found is None:
            found = dbc.api("POST", f"/{kind}", "root", body={"name": name, "owner": "alice", **body},
                            status=201).get_json()
        elif kind == "dbusers" and "alice_shop" not in found["databases"]:
            dbc.api("POST", f"/dbusers/{found['id']}/grants", "root", body={"database": "alice_shop"}, status=200)
        ids["db" if kind == "databases" else "user"] = found["id"]
    for kind in ("databases", "dbusers"):  # what a create of the matrix made
        for item in dbc.api("GET", f"/{kind}", "root", status=200).get_json()["items"]:
            if item["name"] == "alice_new":
                dbc.api("DELETE", f"/{kind}/{item['id']}", "root", status=204)
    return ids


def test_api_access_matrix(dbc):
    rows = []
    for method, path, body, expected in API:
        for actor in ACTORS:
            ids = ensure(dbc)
            url = "/api/v1" + path.format(**ids)
            answer = dbc.client.open(url, method=method, json=body, headers=HEADERS[actor])
            rows.append((method, path, actor, answer.status_code, expected[actor]))
            if method == "GET" and path in ("/databases", "/dbusers") and actor == "other":
                assert "alice_" not in answer.get_data(as_text=True), (path, actor)
            if answer.status_code >= 400:
                assert "alice_shop" not in answer.get_data(as_text=True) or actor in ("owner", "admin")
    print("\n".join(f"{m:6} {p:40} {a:9} {got} (want {want})" for m, p, a, got, want in rows))
    wrong = [r for r in rows if r[3] != r[4]]
    assert not wrong, wrong


PAGES = [
    ("GET", "/databases/", {"owner": 200, "other": 200, "admin": 200, "anonymous": 302}),
    ("GET", "/databases/{db}", {"owner": 200, "other": 404, "admin": 200, "anonymous": 302}),
    ("POST", "/databases/{db}/delete", {"owner": 302, "other": 404, "admin": 302, "anonymous": 302}),
    ("GET", "/databases/users/", {"owner": 200, "other": 200, "admin": 200, "anonymous": 302}),
    ("GET", "/databases/users/{user}", {"owner": 200, "other": 404, "admin": 200, "anonymous": 302}),
    ("POST", "/databases/users/{user}/delete", {"owner": 302, "other": 404, "admin": 302, "anonymous": 302}),
    # An empty create form: refused naming its fields, for anyone logged in; the login page for anonymous.
    ("POST", "/databases/", {"owner": 400, "other": 400, "admin": 400, "anonymous": 302}),
    ("POST", "/databases/users/", {"owner": 400, "other": 400, "admin": 400, "anonymous": 302}),
    # The edit form says which databases it may use (empty: none) and keeps the password when empty.
    ("POST", "/databases/users/{user}", {"owner": 302, "other": 404, "admin": 302, "anonymous": 302}),
    # Bulk delete, first step (the question) of alice's row: another user is told of nothing of hers.
    ("POST", "/databases/delete-selected", {"owner": 200, "other": 200, "admin": 200, "anonymous": 302},
     {"ids": "{db}", "step": "ask"}),
    ("POST", "/databases/users/delete-selected", {"owner": 200, "other": 200, "admin": 200, "anonymous": 302},
     {"ids": "{user}", "step": "ask"}),
]


def test_page_access_matrix(dbc, app):
    names = {"owner": "alice", "other": "bob", "admin": "root"}
    rows = []
    for actor in ACTORS:
        for method, path, expected, *body in PAGES:
            ids = ensure(dbc)
            client = app.test_client()
            form = client.get("/login").get_data(as_text=True)
            if actor != "anonymous":
                page = client.post("/login", data={"username": names[actor], "password": Users.PASSWORD,
                                                   "csrf_token": csrf_from(form)})
                assert page.status_code == 302, page.status_code
                form = client.get("/account/tokens").get_data(as_text=True)
            fields = {key: value.format(**ids) for key, value in (body[0] if body else {}).items()}
            data = {"csrf_token": csrf_from(form), **fields} if method == "POST" else None
            answer = client.open(path.format(**ids), method=method, data=data)
            rows.append((method, path, actor, answer.status_code, expected[actor]))
            if actor == "other":
                assert "alice_shop" not in answer.get_data(as_text=True)
    print("\n".join(f"{m:6} {p:36} {a:9} {got} (want {want})" for m, p, a, got, want in rows))
    wrong = [r for r in rows if r[3] != r[4]]
    assert not wrong, wrong
