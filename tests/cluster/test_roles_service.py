"""Role and software synchronizers, the collector's part, roles changes, flags and removal (loopback agents)."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Node
from app.services import node_lifecycle
from app.services import roles as role_service
from app.services.collector import collect_stats
from app.services.desyncs import pending, register_all, register_desync
from app.services.sync_runners import get_runner
from app.services.synchronizers import SyncError
from tests.conftest import run_worker_burst, wait_until


def test_runners_are_registered():
    """roles, software and templates have their runners (the sync job finds them)."""
    assert get_runner("roles") is role_service.sync_roles
    assert get_runner("software") is role_service.sync_software
    assert get_runner("templates") is role_service.sync_templates


def test_roles_then_software_then_ready(app, agent_nodes):
    """A node just set up: installing while roles/software are pending; the collector's poll ends software."""
    node_id = agent_nodes.add("r1", roles=("web",), state="connecting")
    with app.app_context():
        node = db.session.get(Node, node_id)
        register_desync(node, "roles")
        register_desync(node, "software")
        db.session.commit()
        collect_stats()
        assert db.session.get(Node, node_id).state == "installing"
        assert role_service.sync_roles(node) is True
        role_service.clear_desync(node_id, "roles")
        db.session.commit()

        def software_done():
            collect_stats()
            return "software" not in pending(node_id)

        wait_until(software_done, 20, interval=0.2, what="the collector to see software done")
        node = db.session.get(Node, node_id)
        assert node.state == "ready" and node.stats["software"]["state"] == "skipped"
        assert role_service.sync_software(node) is True
        assert role_service.sync_templates(node) is True


def test_setup_pending_nodes_are_not_polled_into_ready(app, agent_nodes):
    """A node whose setup has not registered its desyncs is left alone by the collector."""
    node_id = agent_nodes.add("r2", roles=("web",), state="connecting")
    with app.app_context():
        node = db.session.get(Node, node_id)
        node.setup_pending = True
        db.session.commit()
        collect_stats()
        assert db.session.get(Node, node_id).state == "connecting"


def test_nothing_is_pushed_to_an_incompatible_agent(app, agent_nodes):
    """Every runner of mine refuses an incompatible node."""
    node_id = agent_nodes.add("r3", roles=("web",), state="incompatible")
    with app.app_context():
        node = db.session.get(Node, node_id)
        for runner in (role_service.sync_roles, role_service.sync_software, role_service.sync_templates):
            with pytest.raises(SyncError, match="update the agent"):
                runner(node)


def test_software_failure_puts_the_node_in_error(app, agent_nodes):
    """A failed installation reported in the stats: the desync keeps the error, the node is `error`."""
    node_id = agent_nodes.add("r4", roles=("web",), state="installing")
    with app.app_context():
        node = db.session.get(Node, node_id)
        register_desync(node, "software")
        db.session.commit()
        role_service.absorb_software_report(node, {"software": {"state": "failed", "roles": ["web"],
                                                                "error": "apt-get install failed (exit 100)"}})
        db.session.commit()
        assert node.state == "error" and "exit 100" in node.history[0].reason
        assert "exit 100" in node.desyncs[0].last_error


def test_changing_roles_follows_the_criteria(app, agent_nodes, users):
    """Adding mail desyncs the mail lists; removing it drops them; roles run again as an operation."""
    node_id = agent_nodes.add("r5", roles=("web",))
    user_id = users.make("boss", admin=True)
    with app.app_context():
        node = db.session.get(Node, node_id)
        operation = role_service.change_roles(node, ["web", "mail"], user_id=user_id)
        assert {"roles", "software", "mail_whitelist", "mail_blacklist"} <= set(pending(node_id))
        assert "firewall" not in pending(node_id)
        assert "roles changed from web to web, mail" in [h.reason for h in node.history]
        assert node.state == "installing"
        op_id = operation.id
    run_worker_burst(app)
    with app.app_context():
        from app.models import Operation

        assert db.session.get(Operation, op_id).status == "succeeded"
        assert "roles" not in pending(node_id)
        node = db.session.get(Node, node_id)
        role_service.change_roles(node, ["web"], user_id=user_id)
        assert "mail_whitelist" not in pending(node_id)


def test_flags_are_in_the_history(app, agent_nodes):
    """maintenance and users_locked on/off, each change a history row."""
    node_id = agent_nodes.add("r6")
    with app.app_context():
        node = db.session.get(Node, node_id)
        assert role_service.set_flags(node, maintenance=True, users_locked=True) == ["maintenance on",
                                                                                       "users_locked on"]
        assert role_service.set_flags(node, maintenance=True) == []
        assert node.history[0].reason == "flags: maintenance on, users_locked on"


def test_removal_refused_while_user_data_is_there(app, agent_nodes, local_node, monkeypatch):
    """The check other areas extend names the owners; the local node is never removed."""
    node_id = agent_nodes.add("r7")
    monkeypatch.setattr(node_lifecycle, "REMOVAL_CHECKS",
                        [lambda node: ["carol", "alice"] if node.name == "r7" else []])
    with app.app_context():
        node = db.session.get(Node, node_id)
        register_all(node)
        db.session.commit()
        with pytest.raises(node_lifecycle.RemovalRefused, match="alice, carol"):
            node_lifecycle.remove_node(node)
        with pytest.raises(node_lifecycle.RemovalRefused, match="local node"):
            node_lifecycle.remove_node(db.session.get(Node, local_node.node_id))
        monkeypatch.setattr(node_lifecycle, "REMOVAL_CHECKS", [])
        node_lifecycle.remove_node(node)
        assert db.session.get(Node, node_id) is None
        assert pending(node_id) == []
