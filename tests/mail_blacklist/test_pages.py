"""Mail → Blacklist: the list page with its add form; each change a distributed request."""

from __future__ import annotations

from tests.conftest import csrf_from, run_worker_burst
from tests.system_list_pages import ListPageTests


class TestBlacklistPage(ListPageTests):
    PATH = "/mail/blacklist"


def test_list_polls_while_a_change_runs_but_not_the_form(admin, app, agent_nodes):
    """A queued change makes the status part poll; the form is outside it."""
    agent_nodes.add("n1")
    page = admin.get("/mail/blacklist")
    admin.post("/mail/blacklist", data={"sender": "x.example", "csrf_token": csrf_from(page.text)})
    page = admin.get("/mail/blacklist").text
    assert 'data-polling="yes"' in page and page.index('id="list-form"') > page.index("</table>\n</div>")
    run_worker_burst(app)
    assert 'data-polling="no"' in admin.get("/mail/blacklist", headers={"HX-Request": "true"}).text

