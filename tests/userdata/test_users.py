"""Panel users as hosting accounts: UID/GID from the range, suspend/resume, roles, delete per node."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import Users, wait_until
from tests.userdata.conftest import basic


def test_uids_from_the_configured_range_same_on_every_node(app, client, cluster, users):
    """UIDs come from HOSTFLEET_UID_RANGE, one per user, the same in every holding node's passwd."""
    app.config["HOSTFLEET_UID_RANGE"] = "20000-20001"
    a = cluster.node("a", roles=("web",))
    b = cluster.node("b", roles=("mail",))
    users.make("root", admin=True)
    made = [client.post("/api/v1/users", json={"name": name, "password": "a long password",
                                                "roles": ["web", "mail"]}, headers=basic("root"))
            for name in ("u1", "u2", "u3")]
    assert [m.status_code for m in made] == [201, 201, 409]
    assert [m.json["uid"] for m in made[:2]] == [20000, 20001]
    assert "UID range 20000-20001 is used up" in made[2].json["error"]
    for node_id in (a, b):
        passwd = (cluster.root(node_id) / "etc/passwd").read_text()
        assert "u1:x:20000:20000:" in passwd and "u2:x:20001:20001:" in passwd and "u3:" not in passwd


def test_a_deleted_users_uid_comes_back_only_after_the_range_was_given_out(app, client, cluster, users):
    """u2 (the last UID given) deleted: the next user gets the UID after it, not u2's; u2's comes back only
    when the range has been given out to its end, and then the lowest free one is taken."""
    app.config["HOSTFLEET_UID_RANGE"] = "20000-20003"
    cluster.node("a", roles=("web",))
    users.make("root", admin=True)

    def make(name):
        made = client.post("/api/v1/users", json={"name": name, "password": "a long password", "roles": ["web"]},
                           headers=basic("root"))
        assert made.status_code == 201, made.json
        return made.json

    u1, u2 = make("u1"), make("u2")
    assert client.delete(f"/api/v1/users/{u2['id']}", headers=basic("root")).status_code == 200
    assert [make("u3")["uid"], make("u4")["uid"]] == [20002, 20003]
    assert client.delete(f"/api/v1/users/{u1['id']}", headers=basic("root")).status_code == 200
    assert [make("u5")["uid"], make("u6")["uid"]] == [20000, 20001]


def test_a_name_that_is_another_users_plus_underscore_is_refused(app, client, cluster, users):
    """Databases are named `<user>_…`: with users bob and bob_x, `bob_x_shop` could be either's, so neither
    name is given while the other exists (whichever came first); `_` in a name is taken literally."""
    node = cluster.node("a", roles=("web",))
    users.make("root", admin=True)

    def make(name):
        return client.post("/api/v1/users", json={"name": name, "password": "a long password", "roles": ["web"]},
                           headers=basic("root"))

    assert make("bob").status_code == 201
    refused = make("bob_x")
    assert refused.status_code == 409 and "bob_" in refused.json["fields"]["name"]
    assert make("bob_x_y").status_code == 409
    assert make("al_ice").status_code == 201
    longer_first = make("al")
    assert longer_first.status_code == 409 and "al_ice" in longer_first.json["fields"]["name"]
    assert make("bobx").status_code == 201  # no underscore: its names start bobx_, not bob_
    assert make("a").status_code == 201  # "al_ice" starts with "a" but not with "a_"
    names = [u["name"] for u in client.get("/api/v1/users", headers=basic("root")).json["items"]]
    assert sorted(names) == ["a", "al_ice", "bob", "bobx", "root"]
    assert "bob_x:" not in (cluster.root(node) / "etc/passwd").read_text()


def test_suspended_user_cannot_log_in_or_call_the_api(app, client, cluster, users, auth):
    """Suspend ends the session and refuses Basic auth; resume lets them back."""
    cluster.node("n1")
    cluster.user("sam")
    users.make("root", admin=True)
    sam_id = client.get("/api/v1/users", headers=basic("root")).json["items"][1]["id"]
    assert client.get("/api/v1/webdomains", headers=basic("sam")).status_code == 200
    assert client.put(f"/api/v1/users/{sam_id}", json={"active": False}, headers=basic("root")).json["active"] is False
    assert client.get("/api/v1/webdomains", headers=basic("sam")).status_code == 401
    assert client.put(f"/api/v1/users/{sam_id}", json={"active": True}, headers=basic("root")).status_code == 200
    assert client.get("/api/v1/webdomains", headers=basic("sam")).status_code == 200


def test_delete_user_removes_data_on_every_node_and_reports(app, client, cluster, users):
    """Data on two nodes: one stopped → reported unavailable, user kept; restarted → all gone, user gone."""
    web = cluster.node("web1", roles=("web",))
    mail = cluster.node("mail1", roles=("dns", "mail"))
    users.make("root", admin=True)
    cluster.user("dora")
    alice, root = basic("dora"), basic("root")
    # Her web and mail domains' DNS is elsewhere: an administrator makes them for her (no zone needed).
    assert client.post("/api/v1/webdomains", json={"name": "dora.example.com", "owner": "dora"},
                       headers=root).status_code == 201
    assert client.post("/api/v1/domains", json={"name": "dora.example.org", "ip": "192.0.2.1"},
                       headers=alice).status_code == 201
    assert client.post("/api/v1/maildomains", json={"name": "dora.example.net", "owner": "dora"},
                       headers=root).status_code == 201
    assert client.post("/api/v1/mailboxes", json={"address": "me@dora.example.net", "password": "long enough"},
                       headers=alice).status_code == 201
    cluster.user("erin")  # on the same nodes: nothing of hers goes
    assert client.post("/api/v1/webdomains", json={"name": "erin.example.com", "owner": "erin"},
                       headers=root).status_code == 201
    with app.app_context():
        from app.extensions import db
        from app.models import User

        dora_id = db.session.scalar(select(User.id).where(User.name == "dora"))
    cluster.agent_nodes.agents[mail].stop()
    partial = client.delete(f"/api/v1/users/{dora_id}", headers=basic("root"))
    assert partial.status_code == 503, partial.json
    outcomes = {n["node"]: (n["outcome"], n["removed"]) for n in partial.json["nodes"]}
    print("\nfirst delete:", outcomes)
    assert outcomes["web1"] == ("applied", ["web domain dora.example.com"])
    assert outcomes["mail1"][0] == "unavailable"
    assert not (cluster.root(web) / "etc/nginx/hostfleet/dora/dora.example.com.conf").exists()
    assert "dora:" not in (cluster.root(web) / "etc/passwd").read_text()
    assert client.get(f"/api/v1/users/{dora_id}", headers=basic("root")).status_code == 200
    cluster.agent_nodes.agents[mail].start()
    from tests.conftest import listening_on, wait_until

    wait_until(listening_on(cluster.agent_nodes.agents[mail].port), 15, what="the mail agent")
    done = client.delete(f"/api/v1/users/{dora_id}", headers=basic("root"))
    assert done.status_code == 200, done.json
    outcomes = {n["node"]: (n["outcome"], sorted(n["removed"])) for n in done.json["nodes"]}
    print("second delete:", outcomes)
    assert outcomes == {"mail1": ("applied", ["domain name dora.example.org", "mail domain dora.example.net",
                                              "mailbox me@dora.example.net"])}
    assert "me@dora.example.net" not in (cluster.root(mail) / "etc/dovecot/hostfleet/passwd").read_text()
    assert "dora:" not in (cluster.root(mail) / "etc/passwd").read_text()
    assert client.get(f"/api/v1/users/{dora_id}", headers=basic("root")).status_code == 404
    assert (cluster.root(web) / "etc/nginx/hostfleet/erin/erin.example.com.conf").exists()
    assert [d["name"] for d in client.get("/api/v1/webdomains", headers=basic("erin")).json["items"]] == [
        "erin.example.com"]


def test_removing_a_role_with_data_is_refused(app, client, cluster, users):
    """A role that holds data stays; an empty one goes with its OS account on that node."""
    a = cluster.node("a", roles=("web",))
    b = cluster.node("b", roles=("mail",))
    users.make("root", admin=True)
    cluster.user("rita", roles=("web", "mail"))
    made = client.post("/api/v1/webdomains", json={"name": "rita.example.com", "owner": "rita"}, headers=basic("root"))
    assert made.status_code == 201
    with app.app_context():
        from app.extensions import db
        from app.models import User

        rita = db.session.scalar(select(User.id).where(User.name == "rita"))
    refused = client.put(f"/api/v1/users/{rita}", json={"roles": ["mail"]}, headers=basic("root"))
    assert refused.status_code == 409 and "roles" in refused.json["fields"]
    dropped = client.put(f"/api/v1/users/{rita}", json={"roles": ["web"]}, headers=basic("root"))
    assert dropped.status_code == 200
    assert dropped.json["location"] == {"web": "a", "dns": None, "mail": None, "db": None}
    assert "rita:" not in (cluster.root(b) / "etc/passwd").read_text()
    assert "rita:" in (cluster.root(a) / "etc/passwd").read_text()
    with app.app_context():
        from app.services.userdata import users_holding

        assert users_holding(a) == ["rita"] and users_holding(b) == []


def test_admin_without_hosting_account_changes_password(client, users):
    """An administrator named like a system account ("admin", "root") still edits their own password."""
    root = users.make("root", admin=True)
    answer = client.put(f"/api/v1/users/{root}", json={"password": "a new long password"}, headers=basic("root"))
    assert answer.status_code == 200, answer.json
    assert answer.json["uid"] is None and answer.json["roles"] == []
    assert client.get("/api/v1/users", headers=basic("root", "a new long password")).status_code == 200
    refused = client.put(f"/api/v1/users/{root}", json={"roles": ["web"]}, headers=basic("root", "a new long password"))
    assert refused.status_code == 400 and "system account name" in refused.json["error"]


def test_a_user_whose_os_account_got_no_answer_is_not_left_half_made(app, client, cluster, users, monkeypatch):
    """Web on node a answered, mail on node b made the account but its answer never came: the user is not
    created (504 naming node b), and the OS account is removed from both nodes, b included."""
    from agent.client import AgentClient, AgentError

    a = cluster.node("a", roles=("web",))
    b = cluster.node("b", roles=("mail",))
    users.make("root", admin=True)
    real = AgentClient.request
    b_url = f":{cluster.agent_nodes.agents[b].port}"

    def no_answer_from_b(self, method, path, *args, **kwargs):
        answer = real(self, method, path, *args, **kwargs)
        if method == "POST" and path == "/v1/users" and self.base_url.endswith(b_url):
            raise AgentError("timeout", f"{self.base_url}{path}: no answer within 5s", url=path)
        return answer

    monkeypatch.setattr(AgentClient, "request", no_answer_from_b)
    made = client.post("/api/v1/users", json={"name": "half", "password": "a long password", "roles": ["web", "mail"]},
                       headers=basic("root"))
    monkeypatch.undo()
    assert made.status_code == 504 and "Node b" in made.json["error"], made.json
    for node_id in (a, b):
        assert "half:" not in (cluster.root(node_id) / "etc/passwd").read_text()
    assert "half" not in [u["name"] for u in client.get("/api/v1/users", headers=basic("root")).json["items"]]


def test_deleting_a_user_on_an_agent_without_the_purge_route_deletes_record_by_record(app, client, cluster, users,
                                                                                      monkeypatch):
    """An agent older than `DELETE /v1/users/<name>/data` answers it 404: the master deletes the user's
    records there one by one instead (mailboxes before their domain), and the user still goes."""
    from agent.client import AgentClient, AgentError

    node = cluster.node("all", roles=("web", "dns", "mail"))
    users.make("root", admin=True)
    cluster.user("fred")
    fred = basic("fred")
    # The web and mail domains by an administrator (their DNS is elsewhere), the rest by fred.
    for path, body, who in (("webdomains", {"name": "fred.example.com", "owner": "fred"}, basic("root")),
                            ("domains", {"name": "fred.example.org", "ip": "192.0.2.1"}, fred),
                            ("maildomains", {"name": "fred.example.net", "owner": "fred"}, basic("root")),
                            ("mailboxes", {"address": "me@fred.example.net", "password": "long enough"}, fred)):
        assert client.post(f"/api/v1/{path}", json=body, headers=who).status_code == 201
    real = AgentClient.request
    asked = []

    def older_agent(self, method, path, *args, **kwargs):
        asked.append(f"{method} {path}")
        if method == "DELETE" and path == "/v1/users/fred/data":
            raise AgentError("http", f"{self.base_url}{path}: 404 Not Found", url=path, status=404,
                             payload={"error": "not found", "fields": {}})
        return real(self, method, path, *args, **kwargs)

    monkeypatch.setattr(AgentClient, "request", older_agent)
    with app.app_context():
        from app.extensions import db
        from app.models import User

        fred_id = db.session.scalar(select(User.id).where(User.name == "fred"))
    done = client.delete(f"/api/v1/users/{fred_id}", headers=basic("root"))
    monkeypatch.undo()
    assert done.status_code == 200, done.json
    assert sorted(done.json["nodes"][0]["removed"]) == ["domain name fred.example.org", "mail domain fred.example.net",
                                                         "mailbox me@fred.example.net", "web domain fred.example.com"]
    deletes = [a for a in asked if a.startswith("DELETE")]
    assert deletes == ["DELETE /v1/users/fred/data", "DELETE /v1/mailboxes/me@fred.example.net",
                       "DELETE /v1/maildomains/fred.example.net", "DELETE /v1/webdomains/fred.example.com",
                       "DELETE /v1/domains/fred.example.org", "DELETE /v1/users/fred"]
    assert "fred:" not in (cluster.root(node) / "etc/passwd").read_text()
    assert not (cluster.root(node) / "etc/nginx/hostfleet/fred/fred.example.com.conf").exists()


def test_the_user_list_shows_each_user_as_their_own_page_does(app, client, cluster, users, monkeypatch):
    """GET /api/v1/users (read set-based, for ten thousand users) and GET /api/v1/users/<id> agree on every
    field for every kind of user: an administrator without a hosting account, a user on a plan with their
    own limit over it, one placed on two nodes with files measured on one, one with no role at all."""
    monkeypatch.setenv("HOSTFLEET_AGENT_USAGE_REFRESH_S", "0.5")
    web, mail = cluster.node("web1", roles=("web", "dns")), cluster.node("mail1", roles=("mail",))
    users.make("root", admin=True)
    admin = basic("root")
    assert client.post("/api/v1/plans", json={"name": "Basic", "limits": {"webdomains": 1, "mailboxes": 4}},
                       headers=admin).status_code == 201
    made = [client.post("/api/v1/users", json=body, headers=admin) for body in (
        {"name": "ann", "password": Users.PASSWORD, "plan": "Basic", "limits": {"webdomains": 3}},
        {"name": "ben", "password": Users.PASSWORD, "roles": ["web", "dns", "mail"]},
        {"name": "cat", "password": Users.PASSWORD, "roles": []},
    )]
    assert [m.status_code for m in made] == [201, 201, 201], [m.json for m in made]
    cluster.zones("ben", "ben.example.com")
    assert client.post("/api/v1/webdomains", json={"name": "ben.example.com"},
                       headers=basic("ben")).status_code == 201
    (cluster.root(web) / "home/ben/big.bin").write_bytes(b"x" * (2 * 2**20))

    def ben_measured():
        cluster.poll()
        return (client.get("/api/v1/users", headers=admin).json["items"][1]["disk_used_mb"] or 0) >= 2

    wait_until(ben_measured, 30, interval=0.2, what="the agent to measure ben's files")
    listed = client.get("/api/v1/users", headers=admin).json["items"]
    assert [u["name"] for u in listed] == ["ann", "ben", "cat", "root"]
    for item in listed:
        assert client.get(f"/api/v1/users/{item['id']}", headers=admin).json == item
    ann, ben = listed[0], listed[1]
    assert ann["plan"] == "Basic" and ann["effective_limits"] == {"webdomains": 3, "mailboxes": 4}
    assert ben["location"] == {"web": "web1", "dns": "web1", "mail": "mail1", "db": None} and mail
    assert listed[3]["roles"] == [] and listed[3]["uid"] is None
