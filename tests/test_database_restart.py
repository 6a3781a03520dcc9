"""The panel survives a PostgreSQL restart: a request the restart cuts gets 503 with Retry-After (JSON for the
API, a page for the browser), never a 500, and the requests after it work on fresh connections.

The cluster is restarted for real (`pg_ctl restart -m fast`, which cuts every connection), on a cluster of
the test's own so the session's shared one is never disturbed.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import Auth, Users, close_app

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_cluster():
    """A PostgreSQL cluster for this test alone (it gets restarted)."""
    from tests.postgres import PostgresCluster, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_app(own_cluster, tmp_path, redis_url):
    """The panel on a migrated database in the test's own cluster."""
    from app import create_app
    from app.config import TestConfig
    from tests.postgres import migrated_template

    name = migrated_template(own_cluster, tmp_path / "migrate", redis_url)
    data = tmp_path / "data"
    data.mkdir()
    app = create_app(TestConfig(data, redis_url, database_url=own_cluster.url(name)))
    yield app
    close_app(app)


class RestartDuringRequest:
    """Restarts the cluster right after the next request's first SQL statement, with its connection checked out
    and its transaction open: the request's next statement meets a connection the server has closed."""

    def __init__(self, app, cluster):
        from app.extensions import db

        self.cluster = cluster
        self.armed = False
        self.restarts = 0
        with app.app_context():
            sa.event.listen(db.engine, "after_cursor_execute", self._after_execute)

    def _after_execute(self, *_args):
        if self.armed:
            self.armed = False
            self.cluster.restart()
            self.restarts += 1


def test_requests_after_a_restart_work(pg_app, own_cluster):
    """Between requests: the pooled connections the restart cut are replaced before use (pre-ping), so the
    next request gets 200, not an error."""
    client = pg_app.test_client()
    auth = Auth(client, Users(pg_app))
    assert auth.login().status_code == 302
    assert client.get("/cluster/nodes").status_code == 200
    own_cluster.restart()
    assert client.get("/cluster/nodes").status_code == 200
    own_cluster.restart()
    assert client.get("/accounts/users").status_code == 200


def test_requests_cut_by_a_restart_get_503_with_retry_after(pg_app, own_cluster):
    """During requests: a page gets a 503 page and the API a 503 JSON error, both with Retry-After; the
    requests after that work."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    users = Users(pg_app)
    client = pg_app.test_client()
    assert Auth(client, users).login().status_code == 302
    with pg_app.app_context():
        _, token = accounts.create_token(db.session.get(User, 1), "restart test")
    bearer = {"Authorization": f"Bearer {token}"}
    restart = RestartDuringRequest(pg_app, own_cluster)

    restart.armed = True
    page = client.get("/cluster/nodes")
    assert restart.restarts == 1
    assert page.status_code == 503, page.text[:500]
    assert page.headers["Retry-After"] == "5"
    assert "The database is not reachable right now" in page.text and "text/html" in page.content_type

    restart.armed = True
    api = client.get("/api/v1/nodes", headers=bearer)
    assert restart.restarts == 2
    assert api.status_code == 503 and api.headers["Retry-After"] == "5"
    assert api.json == {"error": "The database is not reachable right now (restarting?). Try again in a few seconds."}

    assert client.get("/cluster/nodes").status_code == 200
    assert client.get("/api/v1/nodes", headers=bearer).status_code == 200


def test_a_request_while_the_database_is_down_gets_503_then_works_once_it_is_back(pg_app, own_cluster):
    """No server at all (stopped, not restarting): 503 with Retry-After; after it starts, 200."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    users = Users(pg_app)
    users.make("admin", admin=True)
    with pg_app.app_context():
        _, token = accounts.create_token(db.session.get(User, 1), "down test")
    bearer = {"Authorization": f"Bearer {token}"}
    client = pg_app.test_client()
    assert client.get("/api/v1/nodes", headers=bearer).status_code == 200
    own_cluster.shut_down()
    try:
        down = client.get("/api/v1/nodes", headers=bearer)
        assert down.status_code == 503 and down.headers["Retry-After"] == "5", down.text
    finally:
        own_cluster.start()
    assert client.get("/api/v1/nodes", headers=bearer).status_code == 200
