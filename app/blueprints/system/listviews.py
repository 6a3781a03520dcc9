"""The pages of a system-wide list (list, add, edit, delete), shared by System and Mail menus."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from agent.validation import ValidationError
from app.auth_hooks import admin_required
from app.extensions import db, htmx
from app.htmx import render
from app.models import Desync, Operation
from app.services import distributed, lists


def recent_operations(name: str, limit: int = 5) -> list[Operation]:
    """The latest distributed requests on one list (queued ones included)."""
    query = (select(Operation).where(Operation.kind == "list_change")
             .order_by(Operation.id.desc()).limit(50))
    return [op for op in db.session.scalars(query) if op.params.get("list") == name][:limit]


def go_to(operation: Operation):
    """Send the browser to the operation's live page (HX-Redirect for HTMX posts)."""
    target = url_for("operations.show", operation_id=operation.id)
    if htmx:
        return "", 204, {"HX-Redirect": target}
    return redirect(target)


def form_error(form, exc: ValidationError) -> None:
    """Show a validator's refusal under the field it names (or under the first field)."""
    field = form._fields.get(exc.field.split(".")[-1]) or next(iter(f for f in form if f.name != "csrf_token"))
    field.errors = [*field.errors, exc.message] if isinstance(field.errors, list) else [exc.message]


def register_list_views(bp: Blueprint, name: str, endpoint: str, url: str, form_class, page: str,
                        fragment: str) -> None:
    """index / add (POST) / edit / delete routes for list `name` at `url` on bp (<bp>.<endpoint>...)."""
    defn = lists.LISTS[name]

    def context(form, editing=None):
        master = lists.get_list(name)
        desynced = db.session.scalar(select(func.count()).select_from(Desync).where(Desync.list == name))
        return dict(defn=defn, master=master, form=form, editing=editing,
                    operations=recent_operations(name), desynced=desynced, endpoint=f"{bp.name}.{endpoint}")

    def submit(form, action, row_id=None):
        from app.blueprints.system.forms import row_data

        try:
            operation = distributed.request_change(
                name, action, row_data(form, defn.fields) if action != "delete" else None,
                row_id=row_id, user_id=current_user.id)
        except ValidationError as exc:
            db.session.rollback()
            form_error(form, exc)
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
        return render(page, fragment, **context(form))

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
        return render(page, fragment, **context(form, editing=row_id))

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
    bp.add_url_rule(url, endpoint, index, methods=["GET", "POST"])
    bp.add_url_rule(f"{url}/<int:row_id>/edit", f"{endpoint}_edit", edit, methods=["GET", "POST"])
    bp.add_url_rule(f"{url}/<int:row_id>/delete", f"{endpoint}_delete", delete, methods=["POST"])
