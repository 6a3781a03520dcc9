"""What differs between SQLite and PostgreSQL and matters to the panel, each tested on both (`dialect_app`).

ON CONFLICT with RETURNING (the distributed request's desyncs), ids never given again (migrations 0006 and
0007 on SQLite, sequences on PostgreSQL), ids beyond a 32-bit column and NUL bytes (PostgreSQL refuses
both), times in UTC whatever the database server's zone, a compare-and-set update racing another writer
(the master's list), and concurrent creates that each need the next UID.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import Users


def test_conflict_insert_returns_only_the_rows_it_inserted(dialect_app):
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: rows that were already there are neither written nor
    returned (the distributed request counts those as another process's desyncs)."""
    from app.extensions import conflict_insert, db
    from app.models import Desync
    from app.models.base import utcnow
    from app.services.nodes import create_node

    with dialect_app.app_context():
        ids = []
        for n in range(3):
            node = create_node(f"n{n}", f"198.18.0.{n + 1}", roles=["web"], reason="test")
            db.session.flush()
            ids.append(node.id)
        db.session.add(Desync(node_id=ids[1], list="firewall", since=utcnow(), attempts=4))
        db.session.commit()
        rows = [{"node_id": nid, "list": "firewall", "since": utcnow(), "attempts": 0} for nid in ids]
        added = set(db.session.scalars(conflict_insert(Desync).values(rows).on_conflict_do_nothing()
                                       .returning(Desync.node_id)))
        db.session.commit()
        assert added == {ids[0], ids[2]}
        kept = db.session.scalar(sa.select(Desync.attempts).where(Desync.node_id == ids[1]))
        assert kept == 4
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Desync)) == 3


def test_deleted_ids_are_never_given_again(dialect_app):
    """An account, a node or an index row made after the newest one was deleted gets a new id, never the
    deleted one's (a client or a write in flight may still hold it)."""
    from app.extensions import db
    from app.models import Node, User, WebDomainIndex
    from app.services import accounts
    from app.services.nodes import create_node

    with dialect_app.app_context():
        first = accounts.create_user("first", "a long password")
        last = accounts.create_user("last", "a long password")
        node = create_node("n1", "198.18.0.1", roles=["web"], reason="test")
        db.session.flush()
        row = WebDomainIndex(name="a.example.com", owner_id=first.id, node_id=node.id)
        db.session.add(row)
        db.session.commit()
        gone = {"user": last.id, "node": node.id, "row": row.id}
        db.session.delete(row)
        db.session.delete(last)
        db.session.execute(sa.delete(Node).where(Node.id == node.id))
        db.session.commit()

        again = accounts.create_user("again", "a long password")
        node = create_node("n2", "198.18.0.2", roles=["web"], reason="test")
        db.session.flush()
        row = WebDomainIndex(name="b.example.com", owner_id=first.id, node_id=node.id)
        db.session.add(row)
        db.session.commit()
        assert again.id > gone["user"] and node.id > gone["node"] and row.id > gone["row"], gone
        assert db.session.get(User, gone["user"]) is None


def test_an_id_beyond_a_32_bit_column_is_no_row(dialect_app, users):
    """Ids are 32-bit integers on PostgreSQL (64-bit on SQLite): a larger one in a URL is a 404, not a
    database error."""
    from tests.conftest import Auth
    from tests.userdata.conftest import basic

    client = dialect_app.test_client()
    Auth(client, users).login()
    for path in ("/cluster/nodes/3000000000", "/operations/3000000000", "/api/v1/nodes/3000000000"):
        assert client.get(path, headers=basic("admin")).status_code == 404, path


@pytest.mark.parametrize("ref", [3000000000, -1, "n1\x00", "\x00"])
def test_a_node_reference_postgresql_cannot_hold_names_no_node(dialect_app, users, ref):
    """A node chosen for a new user by an id beyond a 32-bit column or by a name with a NUL byte (PostgreSQL
    refuses both in a query; SQLite takes them) is "no such node", a 400 naming the field, on both."""
    from tests.userdata.conftest import basic

    users.make("admin", admin=True)
    response = dialect_app.test_client().post("/api/v1/users", headers=basic("admin"), json={
        "name": "carol", "password": Users.PASSWORD, "roles": ["web"], "nodes": {"web": ref}})
    assert response.status_code == 400, response.text
    assert response.json["fields"] == {"nodes.web": "no such node"}, response.json


@pytest.fixture
def users(dialect_app):
    """The account factory, on the dialect under test."""
    return Users(dialect_app)


def test_times_are_utc_whatever_the_database_servers_zone(dialect_app, users):
    """A time the panel wrote comes back as the same instant in UTC, in the API (with its offset) and on
    pages, on PostgreSQL even when the server's zone is not UTC (SQLite keeps no zone at all)."""
    from app.extensions import db
    from app.models import Operation
    from tests.conftest import Auth
    from tests.userdata.conftest import basic

    with dialect_app.app_context():
        if db.engine.dialect.name == "postgresql":
            name = db.engine.url.database
            db.session.execute(sa.text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kathmandu'"))
            db.session.commit()
            db.session.remove()
            db.engine.dispose()  # the connections to come take the database's zone (unless the panel sets one)
        before = datetime.now(UTC).replace(microsecond=0)
        admin_id = users.make("admin", admin=True)
        operation = Operation(kind="test", title="t", created_by_id=admin_id, params={})
        db.session.add(operation)
        db.session.commit()
        operation_id = operation.id
        db.session.remove()
    client = dialect_app.test_client()
    Auth(client, users).login(create=False)

    stamp = client.get(f"/api/v1/operations/{operation_id}", headers=basic("admin")).json["created_at"]
    assert stamp.endswith("+00:00"), stamp
    assert timedelta(0) <= datetime.fromisoformat(stamp) - before < timedelta(seconds=30), (stamp, before)
    page = client.get(f"/operations/{operation_id}").text
    shown = [before + timedelta(seconds=s) for s in range(30)]
    assert any(moment.strftime("%Y-%m-%d %H:%M:%S") in page for moment in shown), (before, page[-3000:])


def test_a_compare_and_set_update_lets_one_of_two_writers_win(dialect_app):
    """Two transactions set the master's list from the same base version: the second waits for the first
    (PostgreSQL's row lock, SQLite's database lock), then finds the version moved and changes nothing."""
    from app.extensions import db
    from app.models import SystemList
    from app.services import lists

    with dialect_app.app_context():
        lists.get_list("firewall")
        db.session.commit()
        engine = db.engine
        table = SystemList.__table__

        def set_version(conn, version: int) -> int:
            return conn.execute(table.update().where(table.c.name == "firewall", table.c.version == 0)
                                .values(version=version)).rowcount

        second: dict[str, object] = {}
        with engine.connect() as first:
            assert set_version(first, 1) == 1

            def race():
                with engine.connect() as conn:
                    second["rowcount"] = set_version(conn, 2)
                    conn.commit()

            thread = threading.Thread(target=race)
            thread.start()
            thread.join(1.0)
            assert thread.is_alive(), "the second writer did not wait for the first"
            first.commit()
            thread.join(15)
        assert second == {"rowcount": 0}
        assert db.session.scalar(sa.select(table.c.version).where(table.c.name == "firewall")) == 1


def test_concurrent_creates_get_different_uids(dialect_app):
    """Two hosting accounts made at the same moment, in two sessions: both are made, with different UIDs,
    and the counter keeps the higher one."""
    from app.extensions import db
    from app.models import Counter, User, UserAccount
    from app.services import accounts
    from app.services.users import ensure_account

    with dialect_app.app_context():
        ids = [accounts.create_user(name, "a long password").id for name in ("alice", "bob", "carol")]
        ensure_account(db.session.get(User, ids[0]))
        db.session.commit()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def make_account(user_id: int) -> None:
        with dialect_app.app_context():
            try:
                user = db.session.get(User, user_id)
                barrier.wait(5)
                ensure_account(user)
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=make_account, args=(user_id,)) for user_id in ids[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with dialect_app.app_context():
        uids = sorted(db.session.scalars(sa.select(UserAccount.uid)))
        assert len(uids) == 3 and len(set(uids)) == 3, uids
        assert db.session.get(Counter, "uid").value == uids[-1]


def test_errors_about_the_statement_are_not_taken_for_an_unreachable_database(dialect_app):
    """Only a lost or refused connection is a 503: a missing table (SQLite calls it an OperationalError) or
    a NUL byte (psycopg refuses it without asking the server, so with no SQLSTATE) stays a bug, a 500."""
    from sqlalchemy.exc import DBAPIError

    from app.errors import database_unreachable
    from app.extensions import db

    with dialect_app.app_context():
        statements = [("SELECT * FROM no_such_table", {})]
        if db.engine.dialect.name == "postgresql":
            statements.append(("SELECT :value", {"value": "a\x00b"}))
        for sql, params in statements:
            with pytest.raises(DBAPIError) as raised:
                db.session.execute(sa.text(sql), params)
            db.session.rollback()
            assert not database_unreachable(raised.value), (sql, raised.value)
