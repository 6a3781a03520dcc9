"""The `dbserver` synchronizer: a db node is told (PUT /v1/dbserver) to listen on its cluster address and to
let in the cluster's web nodes only; it is desynced again whenever the web nodes change."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agent.tests.ops_helpers import nft_usable


def pending(app, node_id: int) -> list[str]:
    from app.services.desyncs import pending as pending_of

    with app.app_context():
        return pending_of(node_id)


def test_a_db_node_is_set_up_by_the_synchronizer_and_again_when_web_nodes_change(dbc, app):
    if reason := nft_usable():
        pytest.skip(reason)
    from app.extensions import db
    from app.models import Node
    from app.services import roles
    from app.services.desyncs import applies_to, register_all
    from app.services.sync_runners import get_runner

    with app.app_context():
        node = db.session.get(Node, dbc.db)
        web = db.session.get(Node, dbc.web)
        assert applies_to(node, "dbserver") and not applies_to(web, "dbserver")
        assert "dbserver" in register_all(node)
        db.session.commit()
        assert get_runner("dbserver")(node) is True
    root = dbc.cluster.root(dbc.db)
    cnf = (root / "etc/mysql/mariadb.conf.d/60-hostfleet.cnf").read_text()
    assert "bind-address = 127.0.0.1" in cnf
    assert "127.0.0.1" in (root / "etc/hostfleet/db-firewall.nft").read_text()
    state = dbc.cluster.tree(dbc.db)
    with app.app_context():
        assert get_runner("dbserver")(db.session.get(Node, dbc.db)) is True  # idempotent: nothing rewritten
    assert dbc.cluster.tree(dbc.db) == state

    with app.app_context():
        db.session.execute(select(Node))  # the desync of the first setup is done: clear it
        from app.services.desyncs import clear_desync
        clear_desync(dbc.db, "dbserver")
        db.session.commit()
    assert "dbserver" not in pending(app, dbc.db)
    with app.app_context():
        web = db.session.get(Node, dbc.web)
        web.setup_pending = False
        roles.change_roles(web, ["dns", "mail"], user_id=None)  # no longer a web node
    assert "dbserver" in pending(app, dbc.db)
    assert "dbserver" not in pending(app, dbc.web)


def test_a_node_address_that_is_no_ip_is_a_clear_sync_error(dbc, app):
    from app.extensions import db
    from app.models import Node
    from app.services.sync_runners import get_runner
    from app.services.synchronizers import SyncError

    with app.app_context():
        node = db.session.get(Node, dbc.db)
        node.address = "db1.example.net"
        with pytest.raises(SyncError, match="not an IP address"):
            get_runner("dbserver")(node)
