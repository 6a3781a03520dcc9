"""A hostile customer's (mallory's) review of the master: names, logins, sessions, cross-site calls.

Each test is one attack: mallory against alice (a customer holding victim.example) and the administrators.
A test marked xfail(strict) is a finding not fixed yet; the others are attacks that held.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from
from tests.userdata.conftest import basic


@pytest.fixture
def world(app, client, cluster, users):
    """Node n1; alice holds the zone victim.example; mallory and bob are customers; root is an administrator."""
    node_id = cluster.node("n1")
    for name in ("alice", "mallory", "bob"):
        cluster.user(name)
    users.make("root", admin=True)
    zone = client.post("/api/v1/domains", json={"name": "victim.example", "ip": "192.0.2.1"}, headers=basic("alice"))
    assert zone.status_code == 201, zone.json
    return node_id


def owners_of(app, model, *names) -> dict[str, str]:
    """Who the index says holds each name of this model."""
    from app.extensions import db
    from app.models import User

    with app.app_context():
        rows = db.session.execute(select(model.name, User.name).join(User, User.id == model.owner_id)
                                  .where(model.name.in_(names))).all()
    return dict(rows)


# ---------------------------------------------------------------- names: check-then-claim across kinds


def test_two_creates_of_related_names_at_once_do_not_give_them_to_two_owners(app, client, cluster, monkeypatch,
                                                                             users):
    """mallory's zone shop.target.example and alice's zone target.example, created at once: the registry's
    check and the claim are two steps, and the index's unique name only covers the same name in the same
    table. Whichever of the two lands, one owner must end up with both names or one of them refused."""
    from app.extensions import db
    from app.models import DomainIndex
    from app.services import userdata

    cluster.node("n1")
    for name in ("alice", "mallory"):
        cluster.user(name)
    real_check_limit = userdata.check_limit
    fired = []

    def alice_meanwhile(owner, kind_name):
        # mallory's create passed the registry; alice's create of the parent runs before mallory's claim.
        if owner.name == "mallory" and not fired:
            fired.append(True)
            db.session.commit()  # end this request's read (SQLite) so the other request can write
            answers = []
            other = threading.Thread(target=lambda: answers.append(app.test_client().post(
                "/api/v1/domains", json={"name": "target.example", "ip": "192.0.2.1"}, headers=basic("alice"))))
            other.start()
            other.join(60)
            assert answers and answers[0].status_code == 201, answers and answers[0].json
        return real_check_limit(owner, kind_name)

    monkeypatch.setattr(userdata, "check_limit", alice_meanwhile)
    mallory = client.post("/api/v1/domains", json={"name": "shop.target.example", "ip": "192.0.2.9"},
                          headers=basic("mallory"))
    assert fired
    held = owners_of(app, DomainIndex, "target.example", "shop.target.example")
    assert held.get("target.example") == "alice"
    assert mallory.status_code == 409, (mallory.status_code, mallory.json, held)
    assert "shop.target.example" not in held, held
