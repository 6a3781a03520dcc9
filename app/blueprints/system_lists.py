"""The pages of one system-wide list (list and add, edit, delete), for the Firewall, Scheduler, Whitelist
and Blacklist menus: each menu's views.py makes its views here and names its endpoints itself."""

from __future__ import annotations

import re
from typing import NamedTuple

from flask import abort, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField

from agent.validation import ValidationError
from app.auth_hooks import admin_required
from app.errors import show_errors
from app.extensions import db
from app.htmx import redirect_to, render
from app.listing import Column, ListState, page_of_rows
from app.models import Desync, Operation, OperationStatus
from app.services import distributed, lists

# A list change that ended so can be tried again from its operation's page, with what was typed.
RETRYABLE = (OperationStatus.FAILED.value, OperationStatus.PARTIAL.value, OperationStatus.REFUSED.value)
_ROW_FIELD = re.compile(r"rows\[\d+\]\.(\w+)")


class ListRowForm(FlaskForm):
    """A row of a system-wide list; a validator's error goes under the field it names (the first field
    when it names none of them)."""

    def field_for(self, name: str):
        return self._fields.get(name.split(".")[-1]) or next(f for f in self if f.name != "csrf_token")

    def row_data(self, fields: tuple[str, ...]) -> dict:
        """The submitted values of the row, as the validators take them."""
        data = {}
        for name in fields:
            value = self[name].data
            data[name] = "" if value is None and not isinstance(self[name], BooleanField) else value
        return data


class ListViews(NamedTuple):
    index: object
    edit: object
    delete: object


def recent_operations(name: str, limit: int = 5) -> list[Operation]:
    """The latest distributed requests on one list (queued ones included)."""
    query = (select(Operation).where(Operation.kind == "list_change")
             .order_by(Operation.id.desc()).limit(50))
    return [op for op in db.session.scalars(query) if op.params.get("list") == name][:limit]


def retry_url(operation: Operation) -> str | None:
    """Where a failed, partial or refused add or edit of a list is tried again (its form, filled in with
    the row it sent); None for any other operation."""
    params = operation.params or {}
    name, action = params.get("list"), params.get("action")
    if (operation.kind != "list_change" or operation.status not in RETRYABLE or name not in lists.LISTS
            or action not in ("add", "edit") or not isinstance(params.get("row"), dict)):
        return None
    if action == "edit":
        return url_for(f"{name}.edit", row_id=params.get("row_id"), retry=operation.id)
    return url_for(f"{name}.index", retry=operation.id)


def retried(name: str, action: str, row_id: int | None = None) -> Operation | None:
    """The operation ?retry= names, when it is a retryable change of this list of this kind."""
    operation_id = request.args.get("retry", type=int)
    operation = db.session.get(Operation, operation_id) if operation_id else None
    if operation is None or retry_url(operation) is None:
        return None
    params = operation.params
    if params["list"] != name or params["action"] != action or (row_id is not None and params.get("row_id") != row_id):
        return None
    return operation


def fill_from(form: ListRowForm, operation: Operation) -> None:
    """Put the row a failed change sent back into the form and show why it failed: each node's error
    under the field it names (rows[0].user → user), else as the form's error."""
    form.process(data=operation.params["row"])
    form.validate()
    form.csrf_token.errors = []  # a page shown by GET carries no token yet; the form it renders does
    for outcome in operation.nodes:
        if not outcome.error:
            continue
        message = f"{outcome.node_name}: {outcome.error}"
        found = _ROW_FIELD.search(outcome.error)
        target = form._fields.get(found.group(1)) if found else None
        if target is not None and target.name != "csrf_token":
            target.errors = [*target.errors, message]
        else:
            form.form_errors.append(message)
    if not any(o.error for o in operation.nodes) and operation.message:
        form.form_errors.append(operation.message)


def go_to(operation: Operation):
    """Send the browser to the operation's live page (HX-Redirect for HTMX posts)."""
    return redirect_to(url_for("operations.show", operation_id=operation.id))


def list_views(name: str, blueprint: str, form_class: type[ListRowForm], page: str,
               fragment: str = "system/_list.html") -> ListViews:
    """The index (GET, and POST to add), edit and delete views of list `name`, whose endpoints the
    blueprint `blueprint` registers as index, edit and delete."""
    defn = lists.LISTS[name]
    columns = [Column("id", "#", get=lambda r: r["id"]),
               *(Column(f, f.capitalize(), get=lambda r, f=f: r.get(f)) for f in defn.fields)]

    def context(form, editing=None, retry=None):
        master = lists.get_list(name)
        desynced = db.session.scalar(select(func.count()).select_from(Desync).where(Desync.list == name))
        state = ListState.from_request(columns, "id", endpoint=f"{blueprint}.index")
        listing = page_of_rows(master.rows, state, columns,
                               search=lambda r: [r.get("id"), *(r.get(f) for f in defn.fields)])
        return dict(defn=defn, master=master, form=form, editing=editing, operations=recent_operations(name),
                    desynced=desynced, list_bp=blueprint, listing=listing, retry=retry)

    def submit(form, action, row_id=None):
        try:
            operation = distributed.request_change(
                name, action, form.row_data(defn.fields) if action != "delete" else None,
                row_id=row_id, user_id=current_user.id)
        except ValidationError as exc:
            db.session.rollback()
            show_errors(form, exc)
            return None
        except lists.RowNotFound:
            db.session.rollback()
            abort(404)
        return operation

    @login_required
    @admin_required
    def index():
        form = form_class()
        if form.is_submitted():
            if form.validate():
                operation = submit(form, "add")
                if operation:
                    return go_to(operation)
            return render(page, fragment, **context(form)), 400
        operation = retried(name, "add")
        if operation is not None:
            fill_from(form, operation)
        return render(page, fragment, **context(form, retry=operation))

    @login_required
    @admin_required
    def edit(row_id: int):
        master = lists.get_list(name)
        row = next((r for r in master.rows if r["id"] == row_id), None)
        if row is None:
            abort(404)
        form = form_class(data=row) if not form_class().is_submitted() else form_class()
        if form.is_submitted():
            if form.validate():
                operation = submit(form, "edit", row_id)
                if operation:
                    return go_to(operation)
            return render(page, fragment, **context(form, editing=row_id)), 400
        operation = retried(name, "edit", row_id)
        if operation is not None:
            fill_from(form, operation)
        return render(page, fragment, **context(form, editing=row_id, retry=operation))

    @login_required
    @admin_required
    def delete(row_id: int):
        # CSRFProtect has already checked the token of this POST.
        form = form_class()
        operation = submit(form, "delete", row_id)
        return go_to(operation) if operation else (render(page, fragment, **context(form)), 400)

    index.__doc__ = f"The {defn.title.lower()} list with its add form; a valid add starts a distributed request."
    edit.__doc__ = f"Edit one {defn.noun} of the {defn.title.lower()} list (a distributed request)."
    delete.__doc__ = f"Delete one {defn.noun} of the {defn.title.lower()} list (a distributed request)."
    return ListViews(index, edit, delete)
