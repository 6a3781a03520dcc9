"""Placement (docs/design.md): the smallest (users_on_node / weight) / free_resource wins, ties to the lowest id."""

from __future__ import annotations

import pytest
from sqlalchemy import select

GIB = 1024**3

# Two web nodes: a (weight 100) and b (weight 50), equal free disk. Each row: the user placed next,
# the scores (a, b) the formula gives before placing them, and where they go.
SEQUENCE = [
    ("u1", (0.0, 0.0), "a"),        # tie → lowest id
    ("u2", (0.01 / 10, 0.0), "b"),
    ("u3", (0.01 / 10, 0.02 / 10), "a"),
    ("u4", (0.02 / 10, 0.02 / 10), "a"),  # tie again → lowest id
    ("u5", (0.03 / 10, 0.02 / 10), "b"),
    ("u6", (0.03 / 10, 0.04 / 10), "a"),
]


def set_stats(app, node_id: int, disk_free_gib: float, memory_gib: float = 4) -> None:
    """Give a node chosen statistics (what its latest poll would have stored)."""
    from app.extensions import db
    from app.models import Node

    with app.app_context():
        node = db.session.get(Node, node_id)
        node.stats = {"disk": {"free": int(disk_free_gib * GIB)}, "memory": {"available": int(memory_gib * GIB)}}
        db.session.commit()


def print_table(title: str, rows: list[tuple]) -> None:
    """Print the decisions the test checked."""
    print(f"\n{title}")
    print(f"{'user':<6} {'score a':>10} {'score b':>10} {'placed':>7}")
    for name, scores, where in rows:
        print(f"{name:<6} {scores[0]:>10.5f} {scores[1]:>10.5f} {where:>7}")


def test_weights_decide_with_recorded_scores(app, cluster):
    """Users go where the formula says; every decision stores each node's score."""
    from app.extensions import db
    from app.models import Node, PlacementDecision, User

    a = cluster.node("a", roles=("web",), weight=100, poll=False)
    b = cluster.node("b", roles=("web",), weight=50, poll=False)
    set_stats(app, a, 10)
    set_stats(app, b, 10)
    seen = []
    for name, scores, expected in SEQUENCE:
        cluster.user(name, roles=("web",))
        with app.app_context():
            user = db.session.scalar(select(User).where(User.name == name))
            decision = db.session.scalar(select(PlacementDecision).where(PlacementDecision.user_id == user.id))
            got = {c["node"]: c["score"] for c in decision.candidates}
            where = db.session.get(Node, decision.node_id).name
        seen.append((name, (got["a"], got["b"]), where))
        assert got == pytest.approx({"a": scores[0], "b": scores[1]}), name
        assert where == expected, name
    print_table("placement with weights a=100, b=50, 10 GiB free each", seen)


FREE_CASES = [
    # (policy resource, free disk GiB of a and b, memory GiB of a and b, users already on a and b, expected)
    ("disk", 10, 40, 4, 4, 1, 1, "b"),     # a: 1/100/10 = .001, b: 1/50/40 = .0005
    ("disk", 40, 10, 4, 4, 1, 1, "a"),     # a: .00025, b: .002
    ("memory", 40, 10, 1, 8, 1, 1, "b"),   # a: 1/100/1 = .01, b: 1/50/8 = .0025
    ("none", 1, 1000, 4, 4, 1, 1, "a"),    # a: .01, b: .02
    ("none", 1, 1, 4, 4, 3, 1, "b"),       # a: .03, b: .02
]


@pytest.mark.parametrize("resource,free_a,free_b,mem_a,mem_b,on_a,on_b,expected", FREE_CASES)
def test_free_resource_from_policy(app, cluster, resource, free_a, free_b, mem_a, mem_b, on_a, on_b, expected):
    """The free resource the policy names divides the score."""
    from app.extensions import db
    from app.models import Placement, User
    from app.services import placement
    from app.services.policies import get_policy

    a = cluster.node("a", roles=("web",), weight=100, poll=False)
    b = cluster.node("b", roles=("web",), weight=50, poll=False)
    set_stats(app, a, free_a, mem_a)
    set_stats(app, b, free_b, mem_b)
    with app.app_context():
        get_policy().placement_resource = resource
        for i in range(on_a + on_b):
            user = User(name=f"x{i}", password_hash="-")
            db.session.add(user)
            db.session.flush()
            db.session.add(Placement(user_id=user.id, role="web", node_id=a if i < on_a else b))
        db.session.commit()
        decision = placement.choose("web")
        scores = {c["node"]: c["score"] for c in decision.candidates}
        print(f"\n{resource}: scores {scores} → {decision.node.name}")
        assert decision.node.name == expected
        free = {"disk": (free_a, free_b), "memory": (mem_a, mem_b), "none": (1, 1)}[resource]
        assert scores["a"] == pytest.approx(on_a / 100 / free[0])
        assert scores["b"] == pytest.approx(on_b / 50 / free[1])


def test_no_eligible_node_names_every_reason_and_creates_nothing(app, client, cluster, auth):
    """Each node excluded for its own reason; the error lists them all and no user is created."""
    from app.extensions import db
    from app.models import Node, User, UserAccount
    from tests.userdata.conftest import basic

    mail_only = cluster.node("mailonly", roles=("mail",), poll=False)
    locked = cluster.node("locked", roles=("web",), poll=False)
    maint = cluster.node("maint", roles=("web",), poll=False)
    down = cluster.node("down", roles=("web",), poll=False)
    nostats = cluster.node("nostats", roles=("web",), poll=False)
    for node_id in (mail_only, locked, maint, down):
        set_stats(app, node_id, 10)
    with app.app_context():
        db.session.get(Node, locked).users_locked = True
        db.session.get(Node, maint).maintenance = True
        db.session.commit()
    cluster.set_state(down, "unavailable")
    auth.users.make("root", admin=True)
    trees = {n: cluster.tree(n) for n in (mail_only, locked, maint, down, nostats)}
    answer = client.post("/api/v1/users", json={"name": "carol", "password": "a long password", "roles": ["web"]},
                         headers=basic("root"))
    assert answer.status_code == 409, answer.json
    message = answer.json["error"]
    print("\n" + message)
    for expected in ("mailonly: does not have the web role", "locked: is locked for new users",
                     "maint: is in maintenance", "down: is unavailable, not ready",
                     "nostats: has no disk figure yet"):
        assert expected in message
    with app.app_context():
        assert db.session.scalar(select(User).where(User.name == "carol")) is None
        assert db.session.scalars(select(UserAccount)).all() == []
    assert {n: cluster.tree(n) for n in trees} == trees


def test_admin_picks_the_node_and_location_shows_it(app, client, cluster, auth):
    """An explicit node wins over the formula; Location shows per role where it lives and why."""
    from tests.userdata.conftest import basic

    cluster.node("a", roles=("web", "dns"))
    b = cluster.node("b", roles=("web", "mail"))
    auth.users.make("root", admin=True)
    created = client.post("/api/v1/users", json={"name": "dave", "password": "a long password",
                                                 "roles": ["web", "dns", "mail"], "nodes": {"web": "b"}},
                          headers=basic("root"))
    assert created.status_code == 201, created.json
    assert created.json["location"] == {"web": "b", "dns": "a", "mail": "b", "db": None}
    assert created.json["uid"] == created.json["gid"] == 10000
    where = client.get(f"/api/v1/users/{created.json['id']}/location", headers=basic("root")).json
    assert where == {"web": "b", "dns": "a", "mail": "b", "db": None}
    passwd_a = (cluster.root(b).parent.parent / "a/root/etc/passwd").read_text()
    passwd_b = (cluster.root(b) / "etc/passwd").read_text()
    assert "dave:x:10000:10000:" in passwd_a and "dave:x:10000:10000:" in passwd_b
    moved = client.put(f"/api/v1/users/{created.json['id']}", json={"nodes": {"web": "a"}}, headers=basic("root"))
    assert moved.status_code == 200 and moved.json["location"]["web"] == "a"
    assert client.post("/api/v1/webdomains", json={"name": "dave.example.com", "owner": "dave"},
                       headers=basic("root")).status_code == 201
    refused = client.put(f"/api/v1/users/{created.json['id']}", json={"nodes": {"web": "b"}}, headers=basic("root"))
    assert refused.status_code == 409 and "nodes.web" in refused.json["fields"]


def local_and_other(app, cluster, other_state: str = "ready", locked: bool = False) -> tuple[int, int]:
    """The panel's own server (`local`, id first so ties would go to it) and one other web node."""
    from app.extensions import db
    from app.models import Node

    local = cluster.node("local", roles=("web",), poll=False)
    other = cluster.node("other", roles=("web",), poll=False)
    set_stats(app, local, 100)
    set_stats(app, other, 1)  # the formula alone would pick the local node
    with app.app_context():
        db.session.get(Node, local).is_local = True
        db.session.get(Node, other).users_locked = locked
        db.session.commit()
    if other_state != "ready":
        cluster.set_state(other, other_state)
    return local, other


def decision_of(app, name: str):
    from app.extensions import db
    from app.models import PlacementDecision, User

    with app.app_context():
        user = db.session.scalar(select(User).where(User.name == name))
        decision = db.session.scalar(select(PlacementDecision).where(PlacementDecision.user_id == user.id))
        return decision.node_id, {c["node"]: c for c in decision.candidates}


def test_the_panels_own_server_is_passed_over_while_another_node_can_take_the_role(app, cluster):
    """Customers' code on the master's own server reaches its loopback (the panel's Redis, gunicorn):
    with another ready web node, users go there even when the formula would pick the local node, and the
    decision records why the local node was passed over."""
    from app.services.placement import LOCAL_NODE_EXCLUDED

    local, other = local_and_other(app, cluster)
    for name in ("u1", "u2", "u3"):
        cluster.user(name, roles=("web",))
        node_id, candidates = decision_of(app, name)
        assert node_id == other, name
        assert candidates["local"]["excluded"] == LOCAL_NODE_EXCLUDED
        assert candidates["local"]["score"] is not None  # its score is still shown


@pytest.mark.parametrize("other_state,locked", [("unavailable", False), ("ready", True)])
def test_the_panels_own_server_takes_users_when_no_other_node_can(app, cluster, other_state, locked):
    """A single-server install (or every other node down or locked): users still go to the local node,
    whose agent closes loopback to hosting accounts (agent/ops/firewall.py)."""
    local, other = local_and_other(app, cluster, other_state, locked)
    cluster.user("solo", roles=("web",))
    node_id, candidates = decision_of(app, "solo")
    assert node_id == local
    assert candidates["local"]["excluded"] is None and candidates["other"]["excluded"]


def test_an_administrator_may_still_place_a_user_on_the_panels_own_server(app, client, cluster, auth):
    """An explicit choice is the administrator's (recorded as such); the formula never makes it."""
    from tests.userdata.conftest import basic

    local_and_other(app, cluster)
    auth.users.make("root", admin=True)
    created = client.post("/api/v1/users", json={"name": "erin", "password": "a long password", "roles": ["web"],
                                                 "nodes": {"web": "local"}}, headers=basic("root"))
    assert created.status_code == 201, created.json
    assert created.json["location"]["web"] == "local"


def test_a_placement_decision_reads_in_words_with_units():
    """The Location page's reasons: a left-out node says why; a scored one gives users, weight, free GiB of
    the resource and the score, and which node was chosen and by whom (no bare `0 / 100 / 75.48 → 0.000000`)."""
    from app.services.placement import LOCAL_NODE_EXCLUDED, in_words

    scored = {"node_id": 2, "node": "web2", "users": 1, "weight": 100, "free": 75.4812, "score": 0.00013249}
    assert in_words(scored, "disk", 2) == (
        "web2: 1 user on weight 100, 75.5 GiB of disk free → score 0.000132, chosen (the lowest score)")
    assert in_words({**scored, "users": 3}, "memory", 1).startswith("web2: 3 users on weight 100, 75.5 GiB of memory")
    assert in_words(scored, "none", 1) == "web2: 1 user on weight 100 → score 0.000132, not chosen"
    assert in_words(scored, "disk", 2, by_admin=True).endswith("chosen by the administrator")
    left_out = {"node_id": 1, "node": "local", "excluded": LOCAL_NODE_EXCLUDED}
    assert in_words(left_out, "disk", 2) == "local was left out: it " + LOCAL_NODE_EXCLUDED
