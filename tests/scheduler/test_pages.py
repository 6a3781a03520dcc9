"""System → Scheduler: the list page with its add form; each change a distributed request."""

from __future__ import annotations

from tests.system_list_pages import ListPageTests


class TestSchedulerPage(ListPageTests):
    PATH = "/system/scheduler"


def failed_change(app, action: str, row: dict, error: str, row_id=None) -> int:
    """A scheduler change that failed on node n1 with `error`, stored as the distributed request leaves it."""
    from app.extensions import db
    from app.models import Operation, OperationNode
    from app.models.base import utcnow

    with app.app_context():
        operation = Operation(kind="list_change", title=f"scheduler: {action} entry", status="failed",
                              message="0 of 1 target nodes applied the change", finished_at=utcnow(),
                              params={"list": "scheduler", "action": action, "row_id": row_id, "row": row})
        db.session.add(operation)
        db.session.flush()
        db.session.add(OperationNode(operation_id=operation.id, node_name="n1", outcome="failed", error=error))
        db.session.commit()
        return operation.id


def test_retry_of_a_failed_change_opens_its_form_with_what_was_sent(admin, app):
    """The failed operation's page offers Retry; it opens the add form filled in with the row that was sent
    and the node's error under the field it names; the corrected form is sent as a new change."""
    import html
    import re

    row = {"schedule": "*/5 * * * *", "user": "ghost", "command": "/usr/local/bin/backup --all",
           "comment": "nightly copy", "enabled": True}
    op_id = failed_change(app, "add", row, "https://127.0.0.1:58723/v1/lists/scheduler: the agent answered 400: "
                                           "invalid rows[0].user")
    shown = admin.get(f"/operations/{op_id}").text
    retry = html.unescape(re.search(r'id="retry-link" href="([^"]+)"', shown).group(1))
    assert retry == f"/system/scheduler?retry={op_id}"
    form = admin.get(retry).text
    for value in ("*/5 * * * *", "ghost", "/usr/local/bin/backup --all", "nightly copy"):
        assert f'value="{html.escape(value)}"' in form or f'value="{value}"' in form, value
    user_error = re.search(r'<span class="error"[^>]*data-field="user">([^<]*)</span>', form)
    assert user_error and "n1" in user_error.group(1) and "rows[0].user" in user_error.group(1)
    assert 'id="retry-note"' in form and 'aria-invalid="true"' in form
    # a Retry of something that is not a failed change of this list is the plain empty form
    assert 'id="retry-note"' not in admin.get("/system/scheduler?retry=999999").text
    assert 'id="retry-note"' not in admin.get(f"/system/firewall?retry={op_id}").text


def test_a_succeeded_or_other_operation_offers_no_retry(admin, app):
    from app.extensions import db
    from app.models import Operation

    op_id = failed_change(app, "delete", {}, "gone", row_id=3)
    assert 'id="retry-link"' not in admin.get(f"/operations/{op_id}").text
    op_id = failed_change(app, "add", {"schedule": "* * * * *"}, "boom")
    with app.app_context():
        db.session.get(Operation, op_id).status = "succeeded"
        db.session.commit()
    assert 'id="retry-link"' not in admin.get(f"/operations/{op_id}").text


def test_the_empty_list_and_its_search_name_entries_in_the_plural(admin):
    page = admin.get("/system/scheduler").text
    assert "No entries yet." in page and "entrys" not in page
    assert "No entries match." in admin.get("/system/scheduler?q=nothing-like-it").text
