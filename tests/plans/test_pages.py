"""Accounts → Plans: create, list, change, and a plan in use is kept."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import csrf_from


def plan_count(app) -> int:
    from app.extensions import db
    from app.models import Plan

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Plan))


def test_plans_page_creates_edits_and_refuses_deleting_a_plan_in_use(app, client, auth, cluster):
    """The admin page: create a plan, see it listed, change a limit, and a delete of a plan in use is refused."""
    cluster.node("a")
    auth.login("root")
    page = client.get("/accounts/plans/")
    assert page.status_code == 200 and "New plan" in page.text
    made = client.post("/accounts/plans/", data={"name": "Gold", "role_web": "y", "limit_webdomains": "3",
                                                  "csrf_token": csrf_from(page.text)})
    assert made.status_code == 302
    listed = client.get("/accounts/plans/", headers={"HX-Request": "true"})
    assert 'id="plans-table"' in listed.text and "Gold" in listed.text and "webdomains 3" in listed.text
    bad = client.post("/accounts/plans/", data={"name": "Gold", "csrf_token": csrf_from(page.text)})
    assert bad.status_code == 400 and "Gold exists" in bad.text
    from app.extensions import db
    from app.models import Plan

    with app.app_context():
        plan_id = db.session.scalar(select(Plan.id).where(Plan.name == "Gold"))
    cluster.user("alice", plan="Gold")
    edit = client.get(f"/accounts/plans/{plan_id}")
    assert "alice" in edit.text and "effective limits of every user" in edit.text
    saved = client.post(f"/accounts/plans/{plan_id}", data={"name": "Gold", "role_web": "y", "limit_webdomains": "4",
                                                            "csrf_token": csrf_from(edit.text)})
    assert saved.status_code == 302
    refused = client.post(f"/accounts/plans/{plan_id}/delete", data={"csrf_token": csrf_from(edit.text)})
    assert refused.status_code == 409 and "alice" in refused.text
    assert plan_count(app) == 1
