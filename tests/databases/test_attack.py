"""A hostile customer against databases and database users: each attack that once worked, shown refused
with nothing changed on the master, the db node or MariaDB."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.databases.test_hostile import snapshot

MIB = 2**20


@pytest.fixture
def fast_usage(monkeypatch):
    """The agents this test starts measure disk use every 0.5 s (set before the nodes start)."""
    monkeypatch.setenv("HOSTFLEET_AGENT_USAGE_REFRESH_S", "0.5")


def user_id(dbc, name: str) -> int:
    return next(u["id"] for u in dbc.api("GET", "/users", "root", status=200).get_json()["items"] if u["name"] == name)


def disk_used_mb(dbc, uid: int) -> float:
    dbc.cluster.poll()
    return dbc.api("GET", f"/users/{uid}", "root", status=200).get_json()["disk_used_mb"] or 0


def test_a_databases_bytes_count_against_the_disk_quota(fast_usage, dbc):
    """A customer whose database fills their disk quota gets no further database (nor site)."""
    alice = user_id(dbc, "alice")
    dbc.api("PUT", f"/users/{alice}", "root", body={"limits": {"disk_mb": 1}}, status=200)
    dbc.api("POST", "/databases", body={"name": "shop"}, status=201)
    # What the customer's application writes into it, from their own web node.
    dbc.server.sql("CREATE TABLE alice_shop.t (b LONGBLOB) ENGINE=InnoDB;\n"
                   "INSERT INTO alice_shop.t VALUES (REPEAT('x', 3 * 1024 * 1024));\n"
                   "ANALYZE TABLE alice_shop.t;\n")
    wait_until(lambda: disk_used_mb(dbc, alice) >= 3, 30, interval=0.2, what="the database's bytes to be measured")

    before = snapshot(dbc)
    refused = dbc.api("POST", "/databases", body={"name": "more"}, status=409).get_json()
    assert refused["fields"] == {"name": "disk quota of 1 MB used up"}, refused
    assert snapshot(dbc) == before
    bob = dbc.api("GET", f"/users/{user_id(dbc, 'bob')}", "root", status=200).get_json()
    assert not bob["disk_used_mb"], "another owner's figure is not charged with alice's database"
