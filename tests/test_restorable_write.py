"""Commits the nodes can restore skip the disk wait on SQLite; every other commit keeps it."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select


def synchronous() -> int:
    """The synchronous level of the connection the session uses now (1 NORMAL, 2 FULL)."""
    from app.extensions import db

    return db.session.connection().exec_driver_sql("PRAGMA synchronous").scalar()


@pytest.fixture
def sqlite_app(app):
    from app.extensions import db

    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("synchronous=NORMAL is a SQLite setting; other databases commit as they are set up")
    return app


def test_only_the_restorable_write_is_relaxed_and_the_pool_gets_full_back(sqlite_app, users):
    """The claim's commit runs at NORMAL; the connection is FULL again for whoever takes it next, and a
    write made while the session holds changes of its own (unflushed or flushed) goes with them, at FULL."""
    from app.extensions import db, restorable_write
    from app.models import Node, User, WebDomainIndex
    from app.services import userdata
    from app.services.nodes import ensure_local_node

    owner_id = users.make("alice")
    with sqlite_app.app_context():
        seen = []
        event.listen(db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: seen.append(statement))
        assert synchronous() == 2, "a fresh connection commits to disk"
        db.session.commit()
        node = ensure_local_node(sqlite_app.config["DATA_DIR"])
        owner = db.session.get(User, owner_id)
        seen.clear()
        row_id = userdata.claim(userdata.KINDS["webdomains"], owner, node, "claimed.example")
        inserted_at = next(i for i, statement in enumerate(seen) if statement.startswith("INSERT INTO webdomain_index"))
        assert "PRAGMA synchronous=NORMAL" in seen[:inserted_at], seen
        for _ in range(3):  # whichever pooled connection comes next
            assert synchronous() == 2
            db.session.commit()
        confirm = WebDomainIndex.__table__.update().where(WebDomainIndex.id == row_id).values(claimed_at=None)
        db.session.get(Node, node.id).weight = 7  # an unflushed change of durable data
        seen.clear()
        restorable_write(confirm)
        assert "PRAGMA synchronous=NORMAL" not in seen
        assert db.session.scalar(select(Node.weight).where(Node.id == node.id)) == 7
        assert synchronous() == 2
        # A change already flushed holds SQLite's write lock in the session's transaction: a write on a
        # connection of its own would wait on it; it goes with the session's commit instead, at full sync.
        db.session.get(Node, node.id).weight = 8
        db.session.flush()
        seen.clear()
        restorable_write(confirm)
        assert "PRAGMA synchronous=NORMAL" not in seen
        db.session.rollback()
        assert db.session.scalar(select(Node.weight).where(Node.id == node.id)) == 8
