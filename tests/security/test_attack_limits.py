"""A customer's limit (their own or their plan's) under two creates at once (the review of plans and limits)."""

from __future__ import annotations

from tests.userdata.conftest import basic


def test_two_creates_at_once_cannot_pass_a_limit_of_one(app, client, cluster, monkeypatch):
    """mallory may hold one zone. Two creates interleave as two web workers would run them: the first counts
    her zones (0 of 1), then, before it claims its name, the second runs whole (counts 0 of 1, claims, made);
    the first then claims as well. Only one of the two may end with a zone."""
    from app.services import userdata

    cluster.node("n1")
    cluster.user("mallory", limits={"domains": 1})
    real = userdata.holding_node
    raced = []

    def holding_node(owner, role):
        if not raced:
            raced.append(True)
            try:
                raced.append(userdata.create("domains", owner, {"name": "second.example", "ip": "192.0.2.2"}))
            except userdata.UserDataError as exc:
                raced.append(exc)
        return real(owner, role)

    monkeypatch.setattr(userdata.crud, "holding_node", holding_node)
    first = client.post("/api/v1/domains", json={"name": "first.example", "ip": "192.0.2.1"}, headers=basic("mallory"))
    monkeypatch.setattr(userdata.crud, "holding_node", real)
    listed = client.get("/api/v1/domains", headers=basic("mallory")).json
    assert listed["total"] <= 1, (first.status_code, raced, [d["name"] for d in listed["items"]])
