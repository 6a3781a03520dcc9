"""Hosting plans: the API and the page, effective limits (the user's own over the plan's) enforced where data
is created, a plan in use kept, bad input refused with the field named and nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.userdata.conftest import basic


def plan_count(app) -> int:
    from app.extensions import db
    from app.models import Plan

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Plan))


def test_plan_api_life_cycle_and_a_plan_in_use_is_kept(app, client, cluster, users):
    """Create, list, change and delete a plan; a plan with a user on it is refused deletion naming the user."""
    cluster.node("a")
    users.make("root", admin=True)
    made = client.post("/api/v1/plans", json={"name": "Basic", "limits": {"webdomains": 1, "databases": 3},
                                              "roles": ["web", "dns"]}, headers=basic("root"))
    assert made.status_code == 201, made.json
    assert made.json == {"id": made.json["id"], "name": "Basic", "limits": {"webdomains": 1, "databases": 3},
                         "roles": ["dns", "web"], "users": 0}
    plan_id = made.json["id"]
    alice = client.post("/api/v1/users", json={"name": "alice", "password": "a long password", "plan": "Basic"},
                        headers=basic("root"))
    assert alice.status_code == 201, alice.json
    assert alice.json["plan"] == "Basic" and alice.json["roles"] == ["dns", "web"]  # the plan's roles
    assert alice.json["effective_limits"] == {"webdomains": 1, "databases": 3} and alice.json["limits"] == {}
    listed = client.get("/api/v1/plans", headers=basic("root")).json["items"]
    assert [(p["name"], p["users"]) for p in listed] == [("Basic", 1)]
    refused = client.delete(f"/api/v1/plans/{plan_id}", headers=basic("root"))
    assert refused.status_code == 409 and "alice" in refused.json["fields"]["plan"]
    changed = client.put(f"/api/v1/plans/{plan_id}", json={"limits": {"webdomains": 5}}, headers=basic("root"))
    assert changed.status_code == 200 and changed.json["limits"] == {"webdomains": 5}
    shown = client.get(f"/api/v1/users/{alice.json['id']}", headers=basic("root")).json
    assert shown["effective_limits"] == {"webdomains": 5}  # the plan's change reaches its users at once
    moved = client.put(f"/api/v1/users/{alice.json['id']}", json={"plan": None}, headers=basic("root"))
    assert moved.status_code == 200 and moved.json["plan"] is None and moved.json["effective_limits"] == {}
    assert client.delete(f"/api/v1/plans/{plan_id}", headers=basic("root")).status_code == 204
    assert client.get("/api/v1/plans", headers=basic("root")).json["items"] == []


def test_plan_limits_are_enforced_and_the_users_own_limit_wins(app, client, cluster, users):
    """A plan allowing one web domain refuses the second (409 naming the field); the user's own limit of two
    overrides it."""
    cluster.node("a")
    users.make("root", admin=True)
    client.post("/api/v1/plans", json={"name": "one-site", "limits": {"webdomains": 1}}, headers=basic("root"))
    alice = cluster.user("alice", plan="one-site")
    cluster.zones("alice", "alice.test")

    def site(name):
        return client.post("/api/v1/webdomains", json={"name": name}, headers=basic("alice"))

    assert site("a.alice.test").status_code == 201
    second = site("b.alice.test")
    assert second.status_code == 409 and "your plan allows 1 web domain;" in second.json["fields"]["name"]
    raised = client.put(f"/api/v1/users/{alice}", json={"limits": {"webdomains": 2}}, headers=basic("root"))
    assert raised.json["effective_limits"] == {"webdomains": 2}
    assert site("b.alice.test").status_code == 201


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "name"),
    ({"name": "bad/name"}, "name"),
    ({"name": "x", "limits": {"webdomains": -1}}, "limits.webdomains"),
    ({"name": "x", "limits": {"cpu": 1}}, "limits"),
    ({"name": "x", "limits": {"webdomains": "5"}}, "limits.webdomains"),
    ({"name": "x", "roles": ["ftp"]}, "roles"),
    ({"name": "x", "colour": "red"}, "colour"),
])
def test_bad_plan_input_names_the_field_and_writes_nothing(app, client, users, body, field):
    """Every refusal is a 4xx naming the field; no plan is written."""
    users.make("root", admin=True)
    answer = client.post("/api/v1/plans", json=body, headers=basic("root"))
    assert 400 <= answer.status_code < 500, answer.json
    assert field in answer.json.get("fields", {}) or field in answer.json["error"], answer.json
    assert plan_count(app) == 0


def test_users_cannot_see_or_change_plans_and_an_unknown_plan_is_refused(app, client, cluster, users):
    """Plans are for administrators; a user named with a plan that does not exist is not created."""
    cluster.node("a")
    users.make("root", admin=True)
    users.make("bob")
    assert client.get("/api/v1/plans", headers=basic("bob")).status_code == 403
    assert client.post("/api/v1/plans", json={"name": "x"}, headers=basic("bob")).status_code == 403
    answer = client.post("/api/v1/users", json={"name": "carol", "password": "a long password", "plan": "nope"},
                         headers=basic("root"))
    assert answer.status_code == 400 and "plan" in answer.json["fields"]
    assert client.post("/api/v1/plans", json={"name": "dup"}, headers=basic("root")).status_code == 201
    again = client.post("/api/v1/plans", json={"name": "dup"}, headers=basic("root"))
    assert again.status_code == 409 and "name" in again.json["fields"]
