"""Fixtures for the security tests: a cluster of loopback agents with an admin, two users and their tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class Actors:
    """Who is who in a security test: user ids and raw API tokens by role."""

    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def bearer(self, who: str) -> dict:
        """An Authorization header with the actor's API token."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def actors(app, cluster, users):
    """Two ready nodes; the administrator `root`, users `alice` (owner) and `bob` (other); an API token each."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    cluster.node("n1")
    cluster.node("n2")
    people = Actors()
    people.ids["admin"] = users.make("root", admin=True)
    people.ids["owner"] = cluster.user("alice")
    people.ids["other"] = cluster.user("bob")
    with app.app_context():
        for who, user_id in people.ids.items():
            _, raw = accounts.create_token(db.session.get(User, user_id), f"{who} token")
            people.tokens[who] = raw
    return people
