"""Cluster → Synchronization: the desync registry, retry now, re-sync a list or a whole node."""

from __future__ import annotations

from tests.conftest import csrf_from, run_worker_burst


def test_sync_page_retry_and_resync(admin, app, agent_nodes):
    """Synchronization: a desync row with retry-now; re-sync a list or everything on a node."""
    from app.extensions import db
    from app.models import Desync, Node
    from app.services.desyncs import register_desync

    node_id = agent_nodes.add("n1")
    with app.app_context():
        register_desync(db.session.get(Node, node_id), "firewall")
        db.session.commit()
        desync_id = db.session.scalar(db.select(Desync.id))
    page = admin.get("/cluster/sync")
    assert "Retry now" in page.text and 'hx-trigger="load delay:2s"' in page.text
    fragment = admin.get("/cluster/sync", headers={"HX-Request": "true"}).text
    assert fragment.startswith('<div id="sync-table"')
    token = csrf_from(page.text)
    assert admin.post(f"/cluster/sync/{desync_id}/retry", data={"csrf_token": token}).status_code == 302
    run_worker_burst(app)
    assert "No desyncs" in admin.get("/cluster/sync").text
    response = admin.post(f"/cluster/sync/nodes/{node_id}", data={"list": "scheduler", "csrf_token": token})
    assert response.status_code == 302
    run_worker_burst(app)
    assert "succeeded" in admin.get(response.headers["Location"]).text
    response = admin.post(f"/cluster/sync/nodes/{node_id}", data={"csrf_token": token})
    assert response.status_code == 302
    # Not run here: "everything" includes the roles and software synchronizers of node setup.
    from app.models import Operation

    with app.app_context():
        operation = db.session.scalars(db.select(Operation).order_by(Operation.id.desc())).first()
        assert {"firewall", "scheduler", "mail_whitelist", "mail_blacklist"} <= set(operation.params["lists"])

