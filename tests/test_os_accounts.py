"""The `users` synchronizer puts back the OS accounts a node must hold; nodes holding users stay."""

import pytest

from app.extensions import db
from app.models import Node
from app.services import os_accounts  # noqa: F401  (registers the runner)
from app.services.nodes import agent_client
from app.services.sync_runners import get_runner


def test_missing_account_is_recreated_with_the_masters_uid(app, agent_nodes):
    from app.services.collector import collect_stats
    from app.services.users import make_user

    node_id = agent_nodes.add("n1", roles=("web",))
    with app.app_context():
        collect_stats()
        from app.models import UserAccount

        uid = db.session.get(UserAccount, make_user("alice", "a long enough password", roles=("web",)).id).uid
        node = db.session.get(Node, node_id)
        client = agent_client(node)
        assert client.get("/v1/users/alice")[1]["uid"] == uid
        client.delete("/v1/users/alice")
        assert client.get("/v1/users/alice", check=False)[0] == 404
        assert get_runner("users")(node) is True
        account = client.get("/v1/users/alice")[1]
    assert account["uid"] == uid and account["gid"] == uid


def test_a_node_holding_users_cannot_be_removed(app, agent_nodes):
    from app.services.collector import collect_stats
    from app.services.node_lifecycle import RemovalRefused, remove_node
    from app.services.users import make_user

    node_id = agent_nodes.add("n1", roles=("web",))
    with app.app_context():
        collect_stats()
        make_user("alice", "a long enough password", roles=("web",))
        with pytest.raises(RemovalRefused, match="alice"):
            remove_node(db.session.get(Node, node_id))
