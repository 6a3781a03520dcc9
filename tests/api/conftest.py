"""Fixtures of the API tests."""

import pytest


@pytest.fixture
def local_node_row(app):
    """A node row as the local node's is right after first start (no agent needed)."""
    from app.extensions import db
    from app.services.nodes import create_node

    with app.app_context():
        node = create_node("local", "127.0.0.1", roles=["web"], is_local=True, reason="test")
        db.session.commit()
        return node.id
