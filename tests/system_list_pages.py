"""What the page tests of the four system-wide lists (Firewall, Scheduler, Whitelist, Blacklist) share:
a valid row per page, and the tests each list's test class runs on its own page (`PATH`)."""

from __future__ import annotations

import pytest

from agent.tests.test_hostile import VALUES
from tests.conftest import csrf_from, run_worker_burst

PAGES = {
    "/system/firewall": {"action": "accept", "protocol": "tcp", "ports": "443", "source": "", "comment": "https"},
    "/system/scheduler": {"schedule": "@daily", "user": "root", "command": "/bin/true", "comment": "",
                          "enabled": "y"},
    "/mail/whitelist": {"sender": "friend.example"},
    "/mail/blacklist": {"sender": "spam@bad.example"},
}


def _operations(app):
    from app.extensions import db
    from app.models import Operation

    with app.app_context():
        return db.session.query(Operation).count()


def fields_of(path: str) -> list[str]:
    """The text fields of a list's form (the hostile strings go into each)."""
    return [f for f in PAGES[path] if f != "enabled"]


def check_add_answers_at_once(admin, app, agent_nodes, path, hx):
    """A valid add redirects to the live operation page; the job then applies it."""
    agent_nodes.add("n1")
    page = admin.get(path)
    assert page.status_code == 200
    headers = {"HX-Request": "true"} if hx else {}
    response = admin.post(path, data={**PAGES[path], "csrf_token": csrf_from(page.text)}, headers=headers)
    if hx:
        assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/operations/")
        target = response.headers["HX-Redirect"]
    else:
        assert response.status_code == 302 and "/operations/" in response.headers["Location"]
        target = response.headers["Location"]
    assert 'hx-trigger="load delay:1s"' in admin.get(target).text, "the queued operation's page polls"
    run_worker_burst(app)
    final = admin.get(target, headers={"HX-Request": "true"}).text
    assert "hx-trigger" not in final and "succeeded" in final and "applied" in final
    listing = admin.get(path).text
    assert 'id="row-1"' in listing and "Every node holds it." in listing and 'data-polling="no"' in listing
    fragment = admin.get(path, headers={"HX-Request": "true"}).text
    assert fragment.lstrip().startswith("<div id=\"list-page\"") and 'id="list-form"' not in fragment


def check_hostile_values(admin, app, path, field):
    """Every hostile string in one form field: 400, the error under that field, no operation."""
    from agent.tests.test_hostile import _legitimate

    token = csrf_from(admin.get(path).text)
    name = path.split("/")[-1]
    case = f"{'mail_' + name if path.startswith('/mail') else name}.{field}"
    for why, value in VALUES:
        if not isinstance(value, str):
            continue
        before = _operations(app)
        response = admin.post(path, data={**PAGES[path], field: value, "csrf_token": token})
        if response.status_code == 302 and _legitimate(case, value):
            continue
        assert response.status_code == 400, (path, field, why, response.status_code)
        assert f'data-field="{field}"' in response.text, (path, field, why)
        assert _operations(app) == before


class ListPageTests:
    """The tests every list page passes; a subclass named Test… in the menu's folder sets PATH."""

    PATH: str

    @pytest.mark.parametrize("hx", [False, True])
    def test_add_answers_at_once_and_the_operation_page_shows_the_result(self, admin, app, agent_nodes, hx):
        check_add_answers_at_once(admin, app, agent_nodes, self.PATH, hx)

    def test_hostile_values_in_forms_show_the_error_under_the_field(self, admin, app):
        for field in fields_of(self.PATH):
            check_hostile_values(admin, app, self.PATH, field)
